import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, requireTool, stopProcess, waitFor } from '../helpers/tools.js'

// nginx from Debian, in the configurations the benchmark compares the proxy with, and as a
// trivial upstream that answers every request itself.

export interface Nginx {
  readonly url: string
  readonly host: string
  readonly pids: () => number[]
  stop(): Promise<void>
}

export type NginxKind =
  /** The configuration registry docs recommend. */
  | 'recommended'
  /** The same with 64k buffers (with buffering off nginx relays through proxy_buffer_size). */
  | 'buffers-64k'
  /** Answers 200 itself: the upstream for the proxy's own ceiling. */
  | 'trivial'

export async function startNginx(kind: NginxKind, upstreamPort?: number): Promise<Nginx> {
  requireTool('nginx', 'apt-get install -y nginx')
  const dir = mkdtempSync(join(tmpdir(), `mg-nginx-${kind}-`))
  const port = await freePort()
  const proxy = [
    'client_max_body_size 0;',
    'proxy_request_buffering off;',
    'proxy_buffering off;',
    'proxy_http_version 1.1;',
    'proxy_set_header Connection "";',
    'proxy_set_header Host $http_host;',
    'proxy_set_header X-Forwarded-Proto $scheme;',
    // proxy_busy_buffers_size must stay below proxy_buffers, or nginx refuses the config.
    ...(kind === 'buffers-64k' ? ['proxy_buffer_size 64k;', 'client_body_buffer_size 64k;', 'proxy_buffers 8 64k;', 'proxy_busy_buffers_size 128k;'] : []),
  ]
  const location = kind === 'trivial' ? 'location / { return 200 "ok"; }' : `location / { proxy_pass http://registry; ${proxy.join(' ')} }`
  const conf = `
user root;
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000;
  ${kind === 'trivial' ? '' : `upstream registry { server 127.0.0.1:${upstreamPort}; keepalive 64; keepalive_requests 100000; }`}
  server {
    listen 127.0.0.1:${port};
    ${location}
  }
}
`
  writeFileSync(join(dir, 'nginx.conf'), conf)
  const child: ChildProcess = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' })
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`nginx (${kind}) exited; check nginx -t -p ${dir} -c ${dir}/nginx.conf`)
    return (await fetch(`${url}/v2/`).catch(() => undefined)) !== undefined
  }, 10_000, `nginx (${kind})`)
  return {
    url,
    host: `127.0.0.1:${port}`,
    pids: () => (child.pid === undefined ? [] : [child.pid]),
    // SIGQUIT: nginx's graceful shutdown.
    stop: () => stopProcess(child, 'SIGQUIT'),
  }
}

export interface Wrk {
  readonly requests: number
  readonly seconds: number
  readonly rps: number
  readonly p50ms: number
  readonly p99ms: number
  readonly errors: number
}

/** wrk from Debian against one URL, with a fixed method and headers. */
export async function wrk(url: string, options: { method: 'GET' | 'HEAD'; headers?: Record<string, string>; connections: number; seconds: number }): Promise<Wrk> {
  requireTool('wrk', 'apt-get install -y wrk')
  const dir = mkdtempSync(join(tmpdir(), 'mg-wrk-'))
  const script = join(dir, 'script.lua')
  writeFileSync(
    script,
    [
      `wrk.method = "${options.method}"`,
      ...Object.entries(options.headers ?? {}).map(([k, v]) => `wrk.headers["${k}"] = "${v}"`),
      'done = function(summary, latency, requests)',
      '  local e = summary.errors',
      '  io.write(string.format("RESULT {\\"requests\\":%d,\\"duration\\":%d,\\"errors\\":%d,\\"p50\\":%d,\\"p99\\":%d}\\n",',
      '    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status, latency:percentile(50), latency:percentile(99)))',
      'end',
    ].join('\n'),
  )
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('wrk', ['-t2', `-c${options.connections}`, `-d${options.seconds}s`, '--timeout', '10s', '-s', script, url], { stdio: ['ignore', 'pipe', 'pipe'] })
    let text = ''
    child.stdout.on('data', (d: Buffer) => (text += d.toString()))
    child.on('error', reject)
    child.on('close', () => resolve(text))
  })
  const line = out.split('\n').find((l) => l.startsWith('RESULT '))
  if (line === undefined) throw new Error(`wrk printed no result: ${out}`)
  const r = JSON.parse(line.slice(7)) as { requests: number; duration: number; errors: number; p50: number; p99: number }
  const seconds = r.duration / 1e6
  return { requests: r.requests, seconds, rps: r.requests / seconds, p50ms: r.p50 / 1000, p99ms: r.p99 / 1000, errors: r.errors }
}

/**
 * ApacheBench (apache2-utils) for HEAD: wrk waits for a body after a HEAD that carries
 * Content-Length and never completes one.
 */
export async function abHead(url: string, options: { connections: number; seconds: number }): Promise<Wrk> {
  requireTool('ab', 'apt-get install -y apache2-utils')
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('ab', ['-k', '-i', '-q', '-c', String(options.connections), '-t', String(options.seconds), '-n', '10000000', url], { stdio: ['ignore', 'pipe', 'pipe'] })
    let text = ''
    child.stdout.on('data', (d: Buffer) => (text += d.toString()))
    child.stderr.on('data', (d: Buffer) => (text += d.toString()))
    child.on('error', reject)
    child.on('close', () => resolve(text))
  })
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? Number.NaN)
  const requests = num(/Complete requests:\s+(\d+)/)
  const seconds = num(/Time taken for tests:\s+([\d.]+)/)
  if (Number.isNaN(requests)) throw new Error(`ab printed no result: ${out}`)
  return {
    requests,
    seconds,
    rps: requests / seconds,
    p50ms: num(/^\s+50%\s+(\d+)/m),
    p99ms: num(/^\s+99%\s+(\d+)/m),
    errors: num(/Failed requests:\s+(\d+)/) + (Number.isNaN(num(/Non-2xx responses:\s+(\d+)/)) ? 0 : num(/Non-2xx responses:\s+(\d+)/)),
  }
}

/** Clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK; 100 on Linux/x86 and arm64). */
const CLK_TCK = 100

/** CPU seconds of a process and its direct children (nginx: the master and its workers). */
export function treeCpuSeconds(pid: number): number {
  let total = cpuSeconds(pid)
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) total += cpuSeconds(Number(entry))
    } catch {
      // The process ended while we looked.
    }
  }
  return total
}

/** CPU seconds a process (all its threads) used so far: utime + stime. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}
