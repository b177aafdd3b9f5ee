// A stand-in for `@mastra/core`, small enough to install offline, that behaves like a
// built Mastra server where MastraAdmin can see it: it listens on PORT, serves
// /health, the agent API and an SSE stream, logs pino JSON lines to stdout, writes
// spans and logs as JSONL files when MASTRA_CLOUD_TRACES_TARGET_DIR and
// MASTRA_RUNNER_LOGS_TARGET_DIR are set, or, when the collector variables are set,
// posts batches to MASTRA_CLOUD_TRACES_ENDPOINT with the shapes and headers of
// Mastra's CloudExporter instead (one exporter, so no event arrives twice).
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const env = process.env;
const PROJECT_ID = /^[a-zA-Z0-9_-]+$/.test(env.MASTRA_PROJECT_ID ?? '') ? env.MASTRA_PROJECT_ID : undefined;
const DEPLOYMENT_ID = env.MASTRA_DEPLOYMENT_ID;

/** Appends JSON lines to `{dir}/{timestamp}_{uuid}.jsonl`, a new file past maxBytes. */
class JsonlFile {
  constructor(dir, maxBytes = 10 * 1024 * 1024) {
    this.dir = dir;
    this.maxBytes = maxBytes;
    this.file = null;
    this.size = 0;
  }

  write(records) {
    if (!this.dir || records.length === 0) return;
    try {
      if (!this.file || this.size > this.maxBytes) {
        mkdirSync(this.dir, { recursive: true });
        this.file = join(this.dir, `${Date.now()}_${randomUUID()}.jsonl`);
        this.size = 0;
      }
      const text = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
      appendFileSync(this.file, text);
      this.size += Buffer.byteLength(text);
    } catch (error) {
      process.stderr.write(`could not write ${this.dir}: ${error}\n`);
    }
  }
}

/** Batches events per signal and posts them like Mastra's CloudExporter. */
class CloudExporter {
  constructor({ serviceName, flushIntervalMs = 1000, maxBatchSize = 1000 }) {
    this.serviceName = serviceName;
    this.token = env.MASTRA_CLOUD_ACCESS_TOKEN;
    this.endpoint = env.MASTRA_CLOUD_TRACES_ENDPOINT;
    this.enabled = Boolean(this.token && this.endpoint);
    this.maxBatchSize = maxBatchSize;
    this.buffers = { spans: [], logs: [], metrics: [], scores: [], feedback: [] };
    this.cooldownUntil = 0;
    this.timer = this.enabled ? setInterval(() => void this.flush(), flushIntervalMs) : null;
    this.timer?.unref();
  }

  url(signal) {
    const base = this.endpoint.replace(/\/+$/, '');
    if (base.endsWith('/spans/publish')) {
      return base.slice(0, -'/spans/publish'.length) + `/${signal}/publish`;
    }
    const prefix = PROJECT_ID ? `/projects/${PROJECT_ID}/ai` : '/ai';
    return `${base}${prefix}/${signal}/publish`;
  }

  add(signal, record) {
    if (!this.enabled) return;
    const buffer = this.buffers[signal];
    buffer.push(record);
    if (buffer.length >= this.maxBatchSize) void this.flush();
  }

  async flush() {
    if (!this.enabled) return;
    await Promise.all(
      Object.keys(this.buffers).map(async (signal) => {
        const batch = this.buffers[signal].splice(0);
        if (batch.length === 0 || Date.now() < this.cooldownUntil) return;
        await this.post(signal, batch);
      }),
    );
  }

  async post(signal, batch) {
    for (let attempt = 0; attempt <= 3; attempt++) {
      try {
        const response = await fetch(this.url(signal), {
          method: 'POST',
          headers: { Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ [signal]: batch }),
        });
        if (response.ok) return;
        if (response.status === 401 || response.status === 403) {
          this.cooldownUntil = Date.now() + 60_000;
          writeStdout('warn', `CloudExporter: ${signal} rejected with ${response.status}; dropping events`);
          return;
        }
      } catch {
        // network errors are retried below
      }
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
    }
    writeStdout('warn', `CloudExporter: could not publish ${batch.length} ${signal}`);
  }

  async shutdown() {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}

function writeStdout(level, msg, fields = {}) {
  const line = { level: LEVELS[level], time: Date.now(), pid: process.pid, hostname: hostname(), name: 'Mastra', ...fields, msg };
  process.stdout.write(JSON.stringify(line) + '\n');
  return line;
}

/** A pino-style logger: JSON lines to stdout, to the runner's logs dir and to the collector. */
class Logger {
  constructor(serviceName, exporter) {
    this.serviceName = serviceName;
    this.exporter = exporter;
    this.file = new JsonlFile(env.MASTRA_RUNNER_LOGS_TARGET_DIR);
  }

  log(level, message, { traceId, spanId, data } = {}) {
    const fields = {};
    if (PROJECT_ID) fields.projectId = PROJECT_ID;
    if (DEPLOYMENT_ID) fields.deploymentId = DEPLOYMENT_ID;
    if (traceId) Object.assign(fields, { traceId, spanId });
    if (data) fields.data = data;
    const line = writeStdout(level, message, fields);
    // Like a server configured with one exporter: files per the env contract, or
    // batches to the collector when it has one, never the same event twice.
    if (!this.exporter.enabled) this.file.write([line]);
    const record = {
      logId: randomUUID(),
      timestamp: new Date(line.time).toISOString(),
      level,
      message,
      correlationContext: { serviceName: this.serviceName, ...(traceId ? { traceId, spanId } : {}) },
    };
    if (traceId) Object.assign(record, { traceId, spanId });
    if (data) record.data = data;
    this.exporter.add('logs', record);
  }

  debug(message, extra) { this.log('debug', message, extra); }
  info(message, extra) { this.log('info', message, extra); }
  warn(message, extra) { this.log('warn', message, extra); }
  error(message, extra) { this.log('error', message, extra); }
}

const hex = (bytes) => randomBytes(bytes).toString('hex');

/** Records ended spans: a FileExporter line per span, and the CloudExporter copy. */
class Tracer {
  constructor(exporter) {
    this.exporter = exporter;
    this.file = new JsonlFile(env.MASTRA_CLOUD_TRACES_TARGET_DIR);
  }

  span({ traceId, parentSpanId, name, type, entityId, entityName, input, output, startTime, endTime, attributes = {}, error }) {
    const id = hex(8);
    const started = new Date(startTime).toISOString();
    const ended = new Date(endTime).toISOString();
    const span = {
      id,
      traceId,
      name,
      type,
      entityType: type,
      entityId,
      entityName,
      attributes,
      metadata: PROJECT_ID ? { projectId: PROJECT_ID, deploymentId: DEPLOYMENT_ID } : {},
      startTime: started,
      endTime: ended,
      input,
      output,
      isEvent: false,
      isRootSpan: !parentSpanId,
      ...(parentSpanId ? { parentSpanId } : {}),
      ...(error ? { errorInfo: { message: error } } : {}),
      spanId: id,
      spanType: type,
      startedAt: started,
      endedAt: ended,
      error: error ? { message: error } : null,
      createdAt: new Date().toISOString(),
      updatedAt: null,
    };
    if (!this.exporter.enabled) {
      this.file.write([{ type: 'span', projectId: PROJECT_ID ?? 'unknown', deploymentId: DEPLOYMENT_ID ?? 'unknown', timestamp: Date.now(), data: span }]);
    }
    this.exporter.add('spans', span);
    return span;
  }
}

export class Agent {
  constructor({ name, instructions = '', model = 'fixture-model', reply }) {
    this.name = name;
    this.instructions = instructions;
    this.model = model;
    this.reply = reply ?? ((text) => `${name} heard: ${text}`);
  }
}

export class Mastra {
  /**
   * options.server: { healthy?: boolean | () => boolean, gracefulShutdown?: boolean,
   * flushIntervalMs?: number }
   */
  constructor({ agents = {}, server = {}, serviceName, storage } = {}) {
    this.agents = agents;
    this.storage = storage;
    this.server = server;
    this.serviceName = serviceName ?? 'mastra';
  }

  getAgent(name) {
    return this.agents[name];
  }
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function sendJson(response, status, body) {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}

function lastUserText(body) {
  const messages = body?.messages;
  if (typeof messages === 'string') return messages;
  if (Array.isArray(messages) && messages.length > 0) {
    const last = messages[messages.length - 1];
    return typeof last === 'string' ? last : String(last?.content ?? '');
  }
  return '';
}

/** Starts the HTTP server of a built project (what `mastra build`'s entry calls). */
export async function createNodeServer(mastra) {
  const serviceName = mastra.serviceName;
  const exporter = new CloudExporter({ serviceName, flushIntervalMs: mastra.server.flushIntervalMs ?? 1000 });
  const logger = new Logger(serviceName, exporter);
  const tracer = new Tracer(exporter);
  const port = Number(env.PORT ?? 4111);
  const host = mastra.server.host ?? env.MASTRA_HOST ?? '127.0.0.1';
  const healthy = () => {
    const value = mastra.server.healthy ?? true;
    return typeof value === 'function' ? value() : value;
  };

  async function generate(agentName, body) {
    const agent = mastra.getAgent(agentName);
    const traceId = hex(16);
    const started = Date.now();
    const input = lastUserText(body);
    const text = await agent.reply(input);
    const modelStarted = Date.now();
    const usage = { inputTokens: input.length, outputTokens: String(text).length };
    const ended = Date.now();
    const root = tracer.span({
      traceId, name: `agent run: '${agentName}'`, type: 'agent_run', entityId: agentName, entityName: agentName,
      input: body?.messages ?? input, output: { text }, startTime: started, endTime: ended,
    });
    tracer.span({
      traceId, parentSpanId: root.id, name: `llm: '${agent.model}'`, type: 'model_generation', entityId: agentName,
      entityName: agentName, input, output: { text }, startTime: modelStarted, endTime: ended,
      attributes: { model: agent.model, usage },
    });
    exporter.add('metrics', {
      metricId: randomUUID(),
      timestamp: new Date(ended).toISOString(),
      traceId,
      spanId: root.id,
      name: 'mastra_agent_duration_ms',
      value: ended - started,
      labels: { status: 'ok', agent: agentName },
      correlationContext: { traceId, spanId: root.id, entityType: 'agent_run', entityId: agentName, entityName: agentName, serviceName },
      metadata: {},
    });
    logger.info(`agent ${agentName} generated a reply`, { traceId, spanId: root.id });
    return { text, traceId, usage };
  }

  const server = createServer(async (request, response) => {
    const url = new URL(request.url, `http://${request.headers.host ?? 'localhost'}`);
    const path = url.pathname;
    try {
      if (request.method === 'GET' && path === '/health') {
        return healthy() ? sendJson(response, 200, { status: 'ok' }) : sendJson(response, 503, { status: 'unhealthy' });
      }
      if (request.method === 'GET' && path === '/') {
        return sendJson(response, 200, { message: 'Hello to the Mastra API!', service: serviceName });
      }
      if (request.method === 'GET' && path === '/api/agents') {
        const agents = Object.fromEntries(Object.entries(mastra.agents).map(([k, a]) => [k, { name: a.name, instructions: a.instructions }]));
        return sendJson(response, 200, agents);
      }
      if (request.method === 'GET' && path === '/api/stream') {
        const count = Math.min(Number(url.searchParams.get('count') ?? 5), 1000);
        const interval = Math.min(Number(url.searchParams.get('interval_ms') ?? 100), 10_000);
        response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
        for (let i = 0; i < count; i++) {
          response.write(`id: ${i}\nevent: tick\ndata: ${JSON.stringify({ n: i, at: new Date().toISOString() })}\n\n`);
          await new Promise((resolve) => setTimeout(resolve, interval));
        }
        response.write('event: end\ndata: {}\n\n');
        return response.end();
      }
      const match = /^\/api\/agents\/([^/]+)\/(generate|stream)$/.exec(path);
      if (request.method === 'POST' && match) {
        const [, agentName, mode] = match;
        if (!mastra.getAgent(agentName)) return sendJson(response, 404, { error: `agent ${agentName} not found` });
        const raw = await readBody(request);
        let body;
        try {
          body = raw ? JSON.parse(raw) : {};
        } catch {
          return sendJson(response, 400, { error: 'body is not JSON' });
        }
        const result = await generate(agentName, body);
        if (mode === 'generate') return sendJson(response, 200, result);
        response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        for (const word of String(result.text).split(/(?<= )/)) {
          response.write(`data: ${JSON.stringify({ type: 'text-delta', textDelta: word })}\n\n`);
        }
        response.write(`data: ${JSON.stringify({ type: 'finish', usage: result.usage, traceId: result.traceId })}\n\n`);
        return response.end();
      }
      return sendJson(response, 404, { error: 'not found' });
    } catch (error) {
      logger.error(`request failed: ${error}`);
      if (!response.headersSent) return sendJson(response, 500, { error: String(error) });
      return response.end();
    }
  });

  async function shutdown(signal) {
    logger.info(`received ${signal}, shutting down`);
    server.close();
    server.closeAllConnections?.();
    await exporter.shutdown();
    process.exit(0);
  }
  if (mastra.server.gracefulShutdown !== false) {
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    process.once('SIGINT', () => void shutdown('SIGINT'));
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  logger.info(`Mastra API running on port http://${host}:${port}/api`);
  if (!mastra.storage) writePretty('WARN', 33, 'No `storage` configured on Mastra — falling back to an in-memory store.', { docs: 'https://mastra.ai/docs/storage' });
  return server;
}

/** One record the way @mastra/loggers' PinoLogger prints it: pino-pretty, with colours. */
function writePretty(word, colour, msg, fields = {}) {
  const at = new Date();
  const pad = (n, width = 2) => String(n).padStart(width, '0');
  const stamp = `${at.getUTCFullYear()}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())} `
    + `${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())}.${pad(at.getUTCMilliseconds(), 3)} +0000`;
  const lines = [`\x1b[${colour}m${word}\x1b[39m [${stamp}] (Mastra): \x1b[36m${msg}\x1b[39m`];
  for (const [key, value] of Object.entries(fields)) lines.push(`    \x1b[35m${key}\x1b[39m: ${JSON.stringify(value)}`);
  process.stdout.write(lines.join('\n') + '\n');
}
