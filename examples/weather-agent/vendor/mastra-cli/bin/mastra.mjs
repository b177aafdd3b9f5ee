#!/usr/bin/env node
// A stand-in for the `mastra` CLI: `mastra build` turns src/mastra/index.js into a
// self-contained .mastra/output/index.mjs, as the real build does, without a network.
// `fixture.json` in the project may ask the build to misbehave (print env vars, hang).
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const [command] = process.argv.slice(2);
const root = process.cwd();

function info(message) {
  process.stdout.write(`INFO [mastra] ${message}\n`);
}

function fail(message) {
  process.stderr.write(`ERROR [mastra] ${message}\n`);
  process.exit(1);
}

if (command === '--version' || command === '-v') {
  const own = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${own.version}\n`);
  process.exit(0);
}
if (command !== 'build') fail(`unknown command ${command ?? '(none)'}; try: mastra build`);

const fixture = existsSync(join(root, 'fixture.json')) ? JSON.parse(readFileSync(join(root, 'fixture.json'), 'utf8')) : {};
const behaviour = fixture.build ?? {};

info('Analyzing dependencies...');
for (const name of behaviour.printEnv ?? []) {
  // A careless build script: prints a configuration value that is a secret.
  info(`Using ${name}=${process.env[name] ?? ''}`);
}
if (behaviour.hang) {
  info('Optimizing dependencies (this may take a while)...');
  if (behaviour.spawnGrandchild) {
    // A helper that leaves the process group, as some bundlers' workers do.
    spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], {
      detached: true,
      stdio: 'ignore',
    }).unref();
  }
  setInterval(() => {}, 1000);
} else {
  build();
}

function build() {
  const entry = ['src/mastra/index.js', 'src/mastra/index.mjs'].map((p) => join(root, p)).find(existsSync);
  if (!entry) fail('No Mastra entry found: expected src/mastra/index.js');
  info(`Bundling ${entry.slice(root.length + 1)}`);
  const check = spawnSync(process.execPath, ['--check', entry], { encoding: 'utf8' });
  if (check.status !== 0) {
    process.stderr.write(check.stderr);
    fail(`Build failed: ${entry.slice(root.length + 1)} does not parse`);
  }
  let core;
  try {
    core = createRequire(join(root, 'package.json')).resolve('@mastra/core');
  } catch {
    fail('Cannot find @mastra/core: run the install first');
  }
  const output = join(root, '.mastra', 'output');
  rmSync(join(root, '.mastra'), { recursive: true, force: true });
  mkdirSync(output, { recursive: true });
  copyFileSync(core, join(output, 'mastra-core.mjs'));
  const source = readFileSync(entry, 'utf8').replaceAll(/(['"])@mastra\/core\1/g, "'./mastra-core.mjs'");
  writeFileSync(join(output, 'mastra.mjs'), source);
  writeFileSync(
    join(output, 'index.mjs'),
    "import { createNodeServer } from './mastra-core.mjs';\nimport { mastra } from './mastra.mjs';\n\nawait createNodeServer(mastra);\n",
  );
  writeFileSync(join(output, 'package.json'), JSON.stringify({ type: 'module' }) + '\n');
  info(`Build successful, you can now deploy the ${dirname(output).slice(root.length + 1)}/output directory`);
}
