/**
 * Real clients against Berth with accounts (`auth: accounts` in config.yml,
 * the first administrator from `berth user add --admin`): skopeo with
 * --creds, dockerd's `docker login`/`push`/`pull`/`logout`, podman
 * login/push/pull and containerd's `ctr` with --user, each through Berth's
 * Bearer challenge and token endpoint. alice pushes alice/app; bob may not
 * push there (denied) and cannot tell it from a missing repository while it
 * is private; anonymous pulls it once public; an organization's read team
 * pulls but does not push; a robot pushes only to its repository; a revoked
 * personal access token stops at once.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI } from '../../src/hub/index.js';
import { startAccountsBerth, type AccountsBerth } from '../support/accounts.js';
import { createPodman, startContainerd, startDockerd, type Containerd, type Dockerd, type Podman } from '../support/clients.js';
import { buildImage, pushImage, type BuiltImage } from '../support/images.js';
import { CommandError, ensureTool, run } from '../support/tools.js';

/** The command's failure output; fails the test if it succeeded. */
async function failure(command: Promise<unknown>, what: string): Promise<string> {
  try {
    await command;
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    return `${e.stderr}\n${e.stdout}`;
  }
  assert.fail(`${what}: succeeded, but should have been refused`);
}

const PASSWORDS = { alice: 'alice-password-1', bob: 'bob-password-1', carol: 'carol-password-1', dave: 'dave-password-1' };

describe('real clients against Berth with accounts', { timeout: 600_000 }, () => {
  let b: AccountsBerth;
  let work: string;
  let image: BuiltImage;
  let skopeo: string;
  let dockerd: Dockerd | undefined;
  let podman: Podman | undefined;
  let containerd: Containerd | undefined;

  before(async () => {
    skopeo = await ensureTool('skopeo');
    b = await startAccountsBerth();
    for (const [name, password] of Object.entries(PASSWORDS)) await b.addUser(name, password);
    await b.cli(['org', 'add', 'acme', '--owner', 'carol']);
    await b.hub.organizations.createTeam('acme', 'readers', CLI);
    await b.hub.organizations.addTeamMember('acme', 'readers', 'dave', CLI);
    await b.hub.organizations.setTeamPermission('acme', 'readers', '*', 'read', CLI);
    work = await mkdtemp(path.join(tmpdir(), 'berth-accounts-clients-'));
    image = await buildImage(path.join(work, 'layout'), { tag: 'v1', seed: 'accounts-clients', layers: 2, platform: { os: 'linux', architecture: 'amd64' } });
  });
  after(async () => {
    await dockerd?.stop();
    await podman?.close();
    await containerd?.stop();
    await b?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const sk = (args: string[]) => run(skopeo, args, { timeoutMs: 120_000 });

  it('skopeo: alice pushes alice/app with --dest-creds; bob is denied, and sees it as he sees a missing repository', async () => {
    await failure(pushImage(image, `${b.host}/alice/app:v1`), 'an anonymous push');
    await sk(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `alice:${PASSWORDS.alice}`, image.ref, `docker://${b.host}/alice/app:v1`]);
    assert.equal(await b.hub.repositories.visibility('alice/app'), 'private');
    const denied = await failure(sk(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `bob:${PASSWORDS.bob}`, image.ref, `docker://${b.host}/alice/app:v2`]), 'bob pushing to alice/app');
    assert.match(denied, /denied|403 \(Forbidden\)/i);
    const inspect = (repo: string) => failure(sk(['inspect', '--raw', '--tls-verify=false', '--creds', `bob:${PASSWORDS.bob}`, `docker://${b.host}/${repo}:v1`]), `bob inspecting ${repo}`);
    const secret = await inspect('alice/app');
    const missing = await inspect('alice/nop');
    // skopeo stamps its message with the second it failed in; the rest must be the same.
    const same = (text: string, repo: string) => text.replaceAll(repo, 'NAME').replace(/time="[^"]*"/g, 'time=T');
    assert.equal(same(secret, 'alice/app'), same(missing, 'alice/nop'));
    // alice reads it back.
    const raw = await sk(['inspect', '--raw', '--tls-verify=false', '--creds', `alice:${PASSWORDS.alice}`, `docker://${b.host}/alice/app:v1`]);
    assert.equal(createHash('sha256').update(raw.stdout).digest('hex'), image.manifestDigest.slice('sha256:'.length));
  });

  it('docker: login, pull, push and logout as alice; bob is denied a push and a pull; anonymous pulls once public', async () => {
    dockerd = await startDockerd();
    const docker = (...args: string[]) => dockerd!.docker(args);
    const wrong = await failure(dockerd.login(b.host, { username: 'alice', password: 'wrong' }), 'docker login with a wrong password');
    assert.match(wrong, /unauthorized: incorrect username or password/);
    await dockerd.login(b.host, { username: 'alice', password: PASSWORDS.alice });
    await docker('pull', `${b.host}/alice/app:v1`);
    await docker('tag', `${b.host}/alice/app:v1`, `${b.host}/alice/app:v2`);
    await docker('push', `${b.host}/alice/app:v2`);
    await docker('logout', b.host);

    await dockerd.login(b.host, { username: 'bob', password: PASSWORDS.bob });
    const push = await failure(docker('push', `${b.host}/alice/app:v2`), 'bob pushing to alice/app');
    assert.match(push, /^denied$/m);
    await dockerd.removeAllImages();
    const pullPrivate = await failure(docker('pull', `${b.host}/alice/app:v1`), 'bob pulling alice/app');
    const pullMissing = await failure(docker('pull', `${b.host}/alice/nop:v1`), 'bob pulling alice/nop');
    assert.equal(pullPrivate.replaceAll('alice/app', 'NAME'), pullMissing.replaceAll('alice/nop', 'NAME'));
    await docker('logout', b.host);

    await failure(docker('pull', `${b.host}/alice/app:v1`), 'an anonymous pull of a private repository');
    await b.hub.repositories.setVisibility('alice/app', 'public', CLI);
    await docker('pull', `${b.host}/alice/app:v1`);
    const anonymousPush = await failure(docker('push', `${b.host}/alice/app:v1`), 'an anonymous push');
    assert.match(anonymousPush, /unauthorized|denied/i);
  });

  it("podman: an organization's owner pushes, its read team pulls but may not push", async () => {
    podman = await createPodman({ insecureRegistries: [b.host] });
    const p = (...args: string[]) => podman!.podman(args);
    await p('pull', `${b.host}/alice/app:v1`);
    await p('tag', `${b.host}/alice/app:v1`, `${b.host}/acme/api:v1`);
    await podman.login(b.host, { username: 'carol', password: PASSWORDS.carol });
    await p('push', `${b.host}/acme/api:v1`);
    await p('logout', b.host);
    await podman.removeAllImages();
    await podman.login(b.host, { username: 'dave', password: PASSWORDS.dave });
    await p('pull', `${b.host}/acme/api:v1`);
    await p('tag', `${b.host}/acme/api:v1`, `${b.host}/acme/api:v2`);
    const push = await failure(p('push', `${b.host}/acme/api:v2`), 'a read team member pushing');
    assert.match(push, /denied/i);
    await p('logout', b.host);
  });

  it('ctr: a robot pushes with --user to its repository only; a team member pulls with --user', async () => {
    containerd = await startContainerd();
    const ctr = (...args: string[]) => containerd!.ctr(args);
    const robot = await b.hub.robots.create('acme', { name: 'ci', permissions: [{ repository: 'acme/api', permission: 'write' }] }, CLI);
    await ctr('images', 'pull', '--plain-http', `${b.host}/alice/app:v1`);
    for (const to of ['acme/api:ci', 'acme/other:ci']) await ctr('images', 'tag', `${b.host}/alice/app:v1`, `${b.host}/${to}`);
    await ctr('images', 'push', '--plain-http', '--user', `acme+ci:${robot.secret}`, `${b.host}/acme/api:ci`);
    assert.deepEqual((await b.store.registry.listTags('acme/api', { limit: 10 }))?.sort(), ['ci', 'v1']);
    await failure(ctr('images', 'push', '--plain-http', '--user', `acme+ci:${robot.secret}`, `${b.host}/acme/other:ci`), 'the robot pushing elsewhere');
    await ctr('images', 'rm', `${b.host}/acme/api:ci`);
    await failure(ctr('images', 'pull', '--plain-http', `${b.host}/acme/api:ci`), 'an anonymous pull of a private repository');
    await ctr('images', 'pull', '--plain-http', '--user', `dave:${PASSWORDS.dave}`, `${b.host}/acme/api:ci`);
  });

  it('a revoked personal access token stops working at once', async () => {
    const secret = (await b.cli(['token', 'add', 'alice', 'laptop', '--scope', 'read,write'])).trim();
    await b.hub.repositories.setVisibility('alice/app', 'private', CLI);
    const inspect = () => sk(['inspect', '--raw', '--tls-verify=false', '--creds', `alice:${secret}`, `docker://${b.host}/alice/app:v1`]);
    await inspect();
    const [token] = await b.hub.tokens.list('alice');
    await b.hub.tokens.revoke('alice', token!.id, CLI);
    assert.match(await failure(inspect(), 'inspecting with a revoked token'), /unauthorized|authentication required/i);
  });
});
