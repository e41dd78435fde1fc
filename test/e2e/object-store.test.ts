/**
 * Berth on S3: OpenStack Swift's s3api (test/support/swift.ts), a bucket of
 * its own, distribution's `storage.s3` keys, the access keys from
 * REGISTRY_STORAGE_S3_* variables. See test/support/object-store-e2e.ts.
 */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createS3Client, type S3Options } from '../../src/storage/s3.js';
import { objectStorePushPull } from '../support/object-store-e2e.js';
import { s3Engine } from '../support/swift.js';

objectStorePushPull('S3 (Swift)', async () => {
  const engine = await s3Engine();
  const s3: S3Options = { bucket: `berth-e2e-${randomBytes(5).toString('hex')}`, region: engine.region, endpoint: engine.endpoint, accessKey: engine.accessKey, secretKey: engine.secretKey };
  const client = createS3Client(s3);
  await client.send(new CreateBucketCommand({ Bucket: s3.bucket }));
  return {
    storageYaml: [
      '  s3:',
      `    region: ${engine.region}`,
      `    bucket: ${s3.bucket}`,
      `    regionendpoint: ${engine.endpoint}`,
      '    forcepathstyle: true',
      '    rootdirectory: /berth',
      '    chunksize: 5242880',
      '    storageclass: NONE',
    ],
    env: { REGISTRY_STORAGE_S3_ACCESSKEY: engine.accessKey, REGISTRY_STORAGE_S3_SECRETKEY: engine.secretKey },
    listKeys: async (prefix) => ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!),
    has: async (key) =>
      client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key })).then(
        () => true,
        (err: { $metadata?: { httpStatusCode?: number } }) => {
          if (err.$metadata?.httpStatusCode === 404) return false;
          throw err;
        },
      ),
    engineOrigin: new URL(engine.endpoint).origin,
    signatureParam: 'X-Amz-Signature',
  };
});
