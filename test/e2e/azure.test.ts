/**
 * Berth on Azure Blob: Azurite (test/support/azurite.ts), distribution's
 * `storage.azure` keys (the container created by Berth at start-up), the
 * account key from REGISTRY_STORAGE_AZURE_ACCOUNTKEY. See
 * test/support/object-store-e2e.ts.
 */
import { randomBytes } from 'node:crypto';
import { AzureBlobStore } from '../../src/storage/azure.js';
import { objectStorePushPull } from '../support/object-store-e2e.js';
import { azureEngine } from '../support/azurite.js';

objectStorePushPull('Azure Blob (Azurite)', async () => {
  const engine = await azureEngine();
  const container = `berth-e2e-${randomBytes(5).toString('hex')}`;
  const reader = new AzureBlobStore({ accountName: engine.accountName, accountKey: engine.accountKey, serviceUrl: engine.serviceUrl, container });
  return {
    storageYaml: ['  azure:', `    accountname: ${engine.accountName}`, `    container: ${container}`, `    serviceurl: ${engine.serviceUrl}`, '    rootdirectory: /berth'],
    env: { REGISTRY_STORAGE_AZURE_ACCOUNTKEY: engine.accountKey },
    listKeys: async (prefix) => {
      const keys: string[] = [];
      for await (const b of reader.container.listBlobsFlat({ prefix })) keys.push(b.name);
      return keys;
    },
    has: (key) => reader.container.getBlobClient(key).exists(),
    engineOrigin: new URL(engine.serviceUrl).origin,
    signatureParam: 'sig',
  };
});
