// Static files served by the gateway itself, a step of its request path (after the HTTP, limit
// and rate checks, before routing): no queue, no broker.
// GET/HEAD only, conditional and range requests, compressed variants (.br/.gz sidecars, else
// compressed here and cached: static-compressed.ts), and no path that could leave a mount's
// folder. The HTTP rules are in static-http.ts, the path checks in static-path.ts.
import { constants, createReadStream, realpathSync, type Stats } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { CompressionConfig, StaticMount } from '../config/schemas/gateway.js';
import { errors } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { GatewayRequest, GatewayResponse } from './http-message.js';
import { sendError } from './respond.js';
import { EtagCache } from './static-etag.js';
import { contentTypeOf, isHashedName, parseRange } from './static-http.js';
import { chooseCoding, CODINGS, compressStream, isCompressible, type Coding } from './compression.js';
import { CompressedVariants } from './static-compressed.js';
import { hasBody } from './body.js';
import { checkStaticPath } from './static-path.js';
import { ifRangeMatches, notModified } from './conditional.js';

const IMMUTABLE = 'public, max-age=31536000, immutable';
const VARIANTS: readonly { readonly coding: Coding; readonly ext: string }[] = [
  { coding: 'br', ext: '.br' },
  { coding: 'gzip', ext: '.gz' },
];
/** Errors meaning "there is no such file here": a 404, not a warning. */
const MISSING = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EINVAL']);
/** Non-blocking so that a FIFO in the folder cannot hold a thread; no symlink in the last step. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

interface Mount {
  readonly path: string;
  /** The folder with every symlink resolved: what a file's real path must lie under. */
  readonly root: string;
  readonly maxAgeSeconds: number;
  readonly index: boolean;
}

interface Found {
  readonly path: string;
  readonly stat: Stats;
}

export class StaticFiles {
  private readonly mounts: readonly Mount[];
  private readonly etags = new EtagCache();
  private readonly compressed: CompressedVariants;

  constructor(
    mounts: readonly StaticMount[],
    private readonly log: Logger,
    private readonly compression: CompressionConfig,
  ) {
    this.compressed = new CompressedVariants(compression.static.cacheBytes, compression.static);
    this.mounts = mounts.map((m) => ({
      path: m.path,
      root: realpathSync(m.dir),
      maxAgeSeconds: m.maxAgeSeconds,
      index: m.index,
    }));
  }

  /** A prefix check on the raw path: does a mount answer this request (whatever its method)? */
  handles(path: string): boolean {
    return this.mounts.some((m) => path.startsWith(m.path));
  }

  /** Answers the request; never rejects (an unexpected failure is a 500 and a warning). */
  async serve(req: GatewayRequest, res: GatewayResponse): Promise<void> {
    try {
      await this.answer(req, res);
    } catch (err) {
      this.log.warn({ err: describe(err), url: req.url?.slice(0, 256) }, 'static file failed');
      if (!res.headersSent) sendError(res, errors.INTERNAL());
      else res.destroy();
    }
  }

  private async answer(req: GatewayRequest, res: GatewayResponse): Promise<void> {
    // The HTTP version, framing, URL and header limits and the client's rate were checked by
    // the steps before this one (gateway/handler.ts).
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const mount = this.mounts.find((m) => path.startsWith(m.path));
    if (mount === undefined) return notFound(res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendError(res, errors.METHOD_NOT_ALLOWED('Static files answer GET and HEAD only'), undefined, {
        allow: 'GET, HEAD',
      });
    }
    if (hasBody(req)) {
      // A GET or HEAD of a file carries none; closing beats reading one to its end.
      return sendError(res, errors.BAD_REQUEST('Static files take no request body'), undefined, {
        connection: 'close',
      });
    }
    const checked = checkStaticPath(path.slice(mount.path.length));
    if (checked.kind === 'bad')
      return sendError(res, errors.BAD_REQUEST(`Bad static path: ${checked.reason}`));
    if (checked.kind === 'hidden') return notFound(res);
    let segments = checked.segments;
    if (checked.directory) {
      // Never a listing: a folder answers with its index.html or not at all.
      if (!mount.index) return notFound(res);
      segments = [...segments, 'index.html'];
    }
    const requested = join(mount.root, ...segments);
    const file = await this.locate(mount, requested);
    if (file === undefined) return notFound(res);

    const variants: { coding: Coding; file: Found }[] = [];
    for (const v of VARIANTS) {
      const found = await this.locate(mount, requested + v.ext);
      if (found !== undefined) variants.push({ coding: v.coding, file: found });
    }
    const name = segments[segments.length - 1]!;
    const type = contentTypeOf(name);
    // Without a sidecar, a compressible file (by type and size) is compressed here.
    const live = isCompressible(this.compression, { status: 200, contentType: type, size: file.stat.size });
    // A Range request gets the identity file: byte positions are the original's.
    const rangeHeader = req.method === 'GET' ? req.headers.range : undefined;
    let coding =
      rangeHeader === undefined
        ? chooseCoding(req.headers['accept-encoding'], live ? CODINGS : variants.map((v) => v.coding))
        : undefined;
    const sidecar = variants.find((v) => v.coding === coding)?.file;
    const common: Record<string, string> = {
      'cache-control': isHashedName(name) ? IMMUTABLE : `public, max-age=${mount.maxAgeSeconds}`,
      'x-content-type-options': 'nosniff',
      ...(variants.length > 0 || live ? { vary: 'Accept-Encoding' } : {}),
    };
    if (coding !== undefined && sidecar === undefined) {
      if (await this.answerCompressed(req, res, file, coding, common, type)) return;
      // Too many compressions under way, or the file changed while read: uncompressed.
      coding = undefined;
    }
    const chosen = sidecar ?? file;
    const suffix = coding === undefined ? '' : `-${coding}`;
    const validatorsOf = async (st: Stats) => ({
      etag: await this.etags.etag(chosen.path, st, suffix),
      mtimeMs: st.mtimeMs,
    });

    let current = await validatorsOf(chosen.stat);
    if (notModified(req.headers['if-none-match'], req.headers['if-modified-since'], current)) {
      res.writeHead(304, { ...common, etag: current.etag, 'last-modified': httpDate(current.mtimeMs) });
      res.end();
      return;
    }
    const fullHeaders = (st: Stats, etag: string): Record<string, string | number> => ({
      ...common,
      'content-type': type,
      'accept-ranges': 'bytes',
      etag,
      'last-modified': httpDate(st.mtimeMs),
      ...(coding === undefined ? {} : { 'content-encoding': coding }),
    });
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...fullHeaders(chosen.stat, current.etag), 'content-length': chosen.stat.size });
      res.end();
      return;
    }

    // What is sent is what the open descriptor holds: a file replaced or removed since the
    // stat above is answered as it is now, or not found.
    const opened = await openRegularFile(chosen.path);
    if (opened === undefined) return notFound(res);
    const { handle, st } = opened;
    current = await validatorsOf(st);
    const headers = fullHeaders(st, current.etag);
    const range = parseRange(rangeHeader, st.size);
    const useRange =
      (range.kind === 'range' || range.kind === 'unsatisfiable') &&
      ifRangeMatches(single(req.headers['if-range']), current);
    if (useRange && range.kind === 'unsatisfiable') {
      await handle.close();
      return sendError(res, errors.RANGE_NOT_SATISFIABLE(), undefined, {
        'content-range': `bytes */${st.size}`,
        'accept-ranges': 'bytes',
      });
    }
    if (useRange && range.kind === 'range') {
      res.writeHead(206, {
        ...headers,
        'content-range': `bytes ${range.start}-${range.end}/${st.size}`,
        'content-length': range.end - range.start + 1,
      });
      return this.stream(handle, chosen.path, res, range.start, range.end);
    }
    res.writeHead(200, { ...headers, 'content-length': st.size });
    if (st.size === 0) {
      await handle.close();
      res.end();
      return;
    }
    return this.stream(handle, chosen.path, res, 0, st.size - 1);
  }

  /**
   * A file compressed here: from the cache when it is small enough, else as it is sent (no
   * Content-Length). Its ETag is the file's with the coding appended. False: not answered (the
   * cache is busy, or the file changed), so the caller sends it uncompressed.
   */
  private async answerCompressed(
    req: GatewayRequest,
    res: GatewayResponse,
    file: Found,
    coding: Coding,
    common: Record<string, string>,
    type: string,
  ): Promise<boolean> {
    const headersOf = async (st: Stats) => {
      const etag = await this.etags.etag(file.path, st, `-${coding}`);
      return {
        etag,
        headers: {
          ...common,
          'content-type': type,
          'accept-ranges': 'bytes',
          etag,
          'last-modified': httpDate(st.mtimeMs),
          'content-encoding': coding,
        },
      };
    };
    const first = await headersOf(file.stat);
    if (
      notModified(req.headers['if-none-match'], req.headers['if-modified-since'], {
        etag: first.etag,
        mtimeMs: file.stat.mtimeMs,
      })
    ) {
      const { etag, 'last-modified': lastModified } = first.headers;
      res.writeHead(304, { ...common, etag, 'last-modified': lastModified });
      res.end();
      return true;
    }
    if (file.stat.size <= this.compressed.maxFileBytes) {
      // HEAD fills the cache too: the GET that follows finds it there.
      const bytes = await this.compressed.get(file.path, file.stat, coding);
      if (bytes === undefined) return false;
      res.writeHead(200, { ...first.headers, 'content-length': bytes.length });
      if (req.method === 'HEAD') res.end();
      else res.end(bytes);
      return true;
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, first.headers);
      res.end();
      return true;
    }
    const opened = await openRegularFile(file.path);
    if (opened === undefined) {
      notFound(res);
      return true;
    }
    const { handle, st } = opened;
    res.writeHead(200, (await headersOf(st)).headers);
    const source = createReadStream(file.path, { fd: handle, autoClose: true });
    try {
      await pipeline(source, compressStream(coding, this.compression.dynamic, st.size), res, { end: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
        this.log.warn({ err: describe(err), path: file.path }, 'static file read failed');
      }
      res.destroy();
      return true;
    }
    // A file that shrank while sent: the client must not take what came for the whole.
    if (source.bytesRead !== st.size) res.destroy();
    else res.end();
    return true;
  }

  /** The real path of `candidate` when it is a regular file inside the mount and no dotfile. */
  private async locate(mount: Mount, candidate: string): Promise<Found | undefined> {
    let real: string;
    let st: Stats;
    try {
      real = await realpath(candidate);
      if (!real.startsWith(mount.root + sep)) return undefined;
      // A symlink inside the folder may still point at one of its dotfiles.
      if (
        real
          .slice(mount.root.length + 1)
          .split(sep)
          .some((s) => s.startsWith('.'))
      )
        return undefined;
      st = await stat(real);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    return st.isFile() ? { path: real, stat: st } : undefined;
  }

  /** Bytes start..end (inclusive) to the client; a short read or a read error cuts the connection. */
  private async stream(
    handle: FileHandle,
    path: string,
    res: GatewayResponse,
    start: number,
    end: number,
  ): Promise<void> {
    const source = createReadStream(path, { fd: handle, start, end, autoClose: true });
    try {
      await pipeline(source, res, { end: false });
    } catch (err) {
      // The client went away: the pipeline has destroyed the file stream (and closed the file).
      if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
        this.log.warn({ err: describe(err), path }, 'static file read failed');
      }
      res.destroy();
      return;
    }
    // Fewer bytes than Content-Length promised (the file shrank): the client must not take a
    // short answer for a whole one.
    if (source.bytesRead !== end - start + 1) res.destroy();
    else res.end();
  }
}

async function openFile(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, OPEN_FLAGS);
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/** The file open, with its stat: undefined when it is missing or not a regular file. */
async function openRegularFile(path: string): Promise<{ handle: FileHandle; st: Stats } | undefined> {
  const handle = await openFile(path);
  if (handle === undefined) return undefined;
  let st: Stats;
  try {
    st = await handle.stat();
  } catch (err) {
    await handle.close();
    throw err;
  }
  if (!st.isFile()) {
    await handle.close();
    return undefined;
  }
  return { handle, st };
}

function notFound(res: GatewayResponse): void {
  sendError(res, errors.NOT_FOUND('No such file'));
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

function isMissing(err: unknown): boolean {
  return MISSING.has((err as NodeJS.ErrnoException).code ?? '');
}

function describe(err: unknown): string {
  return err instanceof Error
    ? `${(err as NodeJS.ErrnoException).code ?? err.name}: ${err.message}`
    : String(err);
}
