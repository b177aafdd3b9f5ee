// A project that tries, from inside its build and its server, what the platform must
// prevent. Every attempt is reported; the test asserts each one failed.
//
//   node attack.mjs build   prints ATTACK_REPORT {...} and writes .mastra/output
//   node attack.mjs serve   serves /health, /report, /crash, /oom on PORT
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect } from 'node:net';

const paths = (process.env.PROBE_PATHS || '').split(',').filter(Boolean);
const targets = (process.env.PROBE_TARGETS || '').split(',').filter(Boolean);

function status(field) {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(field + ':'));
  return line ? line.split(':')[1].trim() : null;
}

function reach(target) {
  const [host, port] = target.split(':');
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(port), timeout: 1500 });
    socket.on('connect', () => { socket.destroy(); resolve('connected'); });
    socket.on('timeout', () => { socket.destroy(); resolve('timeout'); });
    socket.on('error', (e) => resolve(e.code || 'error'));
  });
}

function tryWrite(path) {
  try {
    writeFileSync(path, 'owned');
    return 'written';
  } catch (e) {
    return e.code || 'error';
  }
}

async function report() {
  const collector = process.env.MASTRA_CLOUD_TRACES_ENDPOINT;
  let collectorStatus = null;
  if (collector) {
    try {
      const answer = await fetch(collector, { method: 'POST', body: '{}' });
      collectorStatus = answer.status;
    } catch (e) {
      collectorStatus = String(e.cause?.code || e);
    }
  }
  return {
    uid: process.getuid(),
    gid: process.getgid(),
    capEff: status('CapEff'),
    noNewPrivs: status('NoNewPrivs'),
    dockerSocket: ['/var/run/docker.sock', '/run/docker.sock'].filter((p) => existsSync(p)),
    visiblePaths: paths.filter((p) => existsSync(p)),
    reached: Object.fromEntries(await Promise.all(targets.map(async (t) => [t, await reach(t)]))),
    writeRoot: tryWrite('/app/owned.txt'),
    writeEtc: tryWrite('/etc/owned.txt'),
    collectorStatus,
  };
}

const mode = process.argv[2];
if (mode === 'build') {
  console.log('ATTACK_REPORT ' + JSON.stringify(await report()));
  mkdirSync('.mastra/output', { recursive: true });
  writeFileSync('.mastra/output/index.mjs', "import '../../attack.mjs';\n");
} else {
  const hog = [];
  createServer(async (req, res) => {
    if (req.url === '/health') return res.end('ok');
    if (req.url === '/report') return res.end(JSON.stringify(await report()));
    if (req.url === '/crash') {
      console.error('fatal: the attack server gives up');
      res.end('bye');
      setTimeout(() => process.exit(3), 50);
      return;
    }
    if (req.url === '/oom') {
      res.end('eating');
      setInterval(() => hog.push(Buffer.alloc(16 * 1024 * 1024, 1)), 10);
      return;
    }
    res.statusCode = 404;
    res.end();
  }).listen(Number(process.env.PORT), process.env.MASTRA_HOST, () => {
    console.log(JSON.stringify({ level: 30, msg: 'attack server listening' }));
  });
}
