/**
 * distribution's own sample configuration (cmd/registry/config-example.yml,
 * the config.yml that registry:2 ships), for tests that start Berth the way
 * a registry:2 user would.
 */
export function stockConfig(rootdirectory = '/var/lib/registry'): string {
  return `version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: ${rootdirectory}
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`;
}
