// What a hostile project tries from its install script, its build step and its server:
// read the platform's key, the database's files, another deployment's files and the
// environment of another deployment's server; write into another deployment's build;
// connect to the platform's loopback services and another server; kill that server.
// Each attempt is recorded as {name, ok, detail}; controls (own files) must succeed.
// Usage: node attack.mjs STAGE [--then MODULE]   (targets.json sits beside this file)
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const stage = process.argv[2] ?? 'unknown';
const targets = JSON.parse(readFileSync(join(here, 'targets.json'), 'utf8'));
const results = [];

function record(name, fn, control = false) {
  try {
    const detail = fn();
    results.push({ name, ok: true, control, detail: String(detail).slice(0, 200) });
  } catch (error) {
    results.push({ name, ok: false, control, detail: String(error?.code ?? error).slice(0, 200) });
  }
}

function tryConnect(name, port, { http = false, control = false } = {}) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let finished = false;
    const done = (ok, detail) => {
      if (finished) return;
      finished = true;
      results.push({ name, ok, control, detail: String(detail).slice(0, 200) });
      socket.destroy();
      resolve();
    };
    let connected = false;
    socket.setTimeout(2000, () => done(connected, 'timeout'));
    socket.once('error', (error) => done(connected, error.code ?? String(error)));
    socket.once('connect', () => {
      connected = true;
      if (!http) return done(true, 'connected');
      socket.write(`GET ${targets.http_path ?? '/'} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      let text = '';
      socket.on('data', (chunk) => { text += chunk; });
      socket.once('end', () => done(true, text.split('\r\n')[0] || 'connected'));
    });
  });
}

record('own package.json is readable', () => readFileSync(join(here, 'package.json'), 'utf8').length, true);
record('own folder is writable', () => { writeFileSync(join(here, `.written-${stage}`), stage); return 'written'; }, true);
for (const [name, path] of Object.entries(targets.read ?? {})) {
  record(`read ${name}`, () => readFileSync(path, 'utf8').slice(0, 40));
}
for (const [name, path] of Object.entries(targets.write ?? {})) {
  record(`write ${name}`, () => { writeFileSync(path, `overwritten by ${stage}`); return 'written'; });
}
for (const [name, pid] of Object.entries(targets.pids ?? {})) {
  record(`see process ${name}`, () => { if (!existsSync(`/proc/${pid}`)) throw Object.assign(new Error('absent'), { code: 'ENOENT' }); return 'visible'; });
  if (!process.env.ATTACK_NO_SIGNAL) {
    record(`signal ${name}`, () => { process.kill(pid, 'SIGKILL'); return 'killed'; });
  }
}
for (const [name, port] of Object.entries(targets.connect ?? {})) {
  await tryConnect(`connect ${name}`, port, { http: true });
}
if (stage === 'server') {
  for (const [name, port] of Object.entries(targets.allowed ?? {})) {
    await tryConnect(`connect ${name}`, port, { control: true });
  }
}

mkdirSync(join(here, 'attack-results'), { recursive: true });
writeFileSync(join(here, 'attack-results', `${stage}.json`), JSON.stringify(results, null, 1));
const then = process.argv.indexOf('--then');
if (then > 0) await import(join(here, process.argv[then + 1]));
