// `bae agent --metrics HOST:PORT`: serves the agent's registry at GET /metrics (Prometheus text
// format); anything else is 404 (405 for another method on /metrics). A bind failure is an
// AgentError naming the address and the reason.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UsageError } from '../errors';
import { moduleLogger } from '../log';
import { AgentError } from './client';
import type { AgentMetrics } from './metrics';

const log = moduleLogger('agent/metrics');

export interface MetricsListen {
  host: string;
  /** 0: any free port (the bound one is in MetricsServer.url). */
  port: number;
}

/** Parses HOST:PORT ([v6]:PORT for IPv6): what --metrics takes. */
export function parseMetricsListen(text: string): MetricsListen {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(`--metrics '${text}': expected HOST:PORT (127.0.0.1:9464, 0.0.0.0:9464, [::1]:9464; port 0..65535, 0 picks a free one)`);
  }
  return { host: m[1] ?? m[2]!, port };
}

const REASONS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'no interface here has that address',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
};

export class MetricsServer {
  readonly url: string;
  #server: http.Server;

  private constructor(server: http.Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  static async start(metrics: AgentMetrics, listen: MetricsListen): Promise<MetricsServer> {
    const server = http.createServer((req, res) => {
      const pathname = (req.url ?? '/').split('?')[0];
      if (pathname !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
        return;
      }
      metrics.exposition().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (err: unknown) => {
          log.error({ err }, 'metrics: scrape failed');
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`scrape failed: ${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const where = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
        const reason = REASONS[err.code ?? ''] ?? err.message;
        reject(new AgentError(`cannot serve metrics on ${where}: ${reason}${err.code ? ` (${err.code})` : ''}`, { cause: err }));
      });
      server.listen(listen.port, listen.host, () => resolve());
    });
    server.on('error', (err) => log.error({ err }, 'metrics server'));
    const a = server.address() as AddressInfo;
    const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`;
    log.info({ url }, 'serving metrics');
    return new MetricsServer(server, url);
  }

  /** Stops listening and ends open connections; safe twice. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
