// A plain static file server (no dependencies), for the browser tests and as `./build.sh serve`'s
// fallback where python3 is missing:  node tests/browser/serve.mjs DIR [PORT]
//
// It only ever listens on 127.0.0.1. `cors: true` adds Access-Control-Allow-Origin: * (the tests use a
// second server on another port to check that style URLs are fetched with CORS).

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.md': 'text/markdown; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.bin': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
};

/** Serves `root` on 127.0.0.1:`port` (0 = any free port). Resolves to {server, port, url, requests, close()}. */
export function serve(root, { port = 0, cors = false } = {}) {
  const base = path.resolve(root);
  const requests = []; // "METHOD /path" of every request, for tests that count downloads
  const server = http.createServer((req, res) => {
    const headers = { 'Cache-Control': 'no-cache' };
    if (cors) headers['Access-Control-Allow-Origin'] = '*';
    const fail = (status, text) => res.writeHead(status, { ...headers, 'Content-Type': 'text/plain' }).end(text);
    let urlPath;
    try {
      // Both throw on what a client may send: "//" is no valid URL, "%" no valid escape.
      urlPath = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    } catch {
      requests.push(`${req.method} ${req.url}`);
      fail(400, 'bad request: malformed path');
      return;
    }
    requests.push(`${req.method} ${urlPath}`);
    if (urlPath.includes('\0')) {
      fail(400, 'bad request: NUL in path'); // fs would throw on it
      return;
    }
    let file = path.join(base, urlPath);
    // Not a prefix test: "/..%2fwww2/x" reaches the sibling folder www2, whose path starts with www's.
    const inside = path.relative(base, file);
    if (inside === '..' || inside.startsWith(`..${path.sep}`) || path.isAbsolute(inside)) {
      fail(403, 'forbidden');
      return;
    }
    fs.stat(file, (err, stat) => {
      if (!err && stat.isDirectory()) {
        file = path.join(file, 'index.html');
        try {
          stat = fs.statSync(file);
        } catch (e) {
          err = e;
        }
      }
      if (err || !stat.isFile()) {
        fail(404, `not found: ${urlPath}`);
        return;
      }
      headers['Content-Type'] = TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream';
      headers['Content-Length'] = stat.size;
      headers['Last-Modified'] = stat.mtime.toUTCString();
      res.writeHead(200, headers);
      if (req.method === 'HEAD') res.end();
      // A file that vanished or cannot be read after the stat: drop the connection, keep the server.
      else fs.createReadStream(file).on('error', () => res.destroy()).pipe(res);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const actual = server.address().port;
      resolve({
        server,
        port: actual,
        url: `http://127.0.0.1:${actual}`,
        requests,
        close: () => new Promise((done) => { server.closeAllConnections?.(); server.close(() => done()); }),
      });
    });
  });
}

// Command line: node tests/browser/serve.mjs DIR [PORT]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [dir = 'www', port = '8080'] = process.argv.slice(2);
  serve(dir, { port: Number(port) }).then(({ port: p }) => {
    console.log(`serving ${path.resolve(dir)} on http://localhost:${p}/ (Ctrl-C stops)`);
  });
}
