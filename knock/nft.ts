// Runs `nft -f` with a script on stdin. Every change the guard makes goes through here.
import { spawn } from 'node:child_process';
import { errors } from '../lib/errors.js';

export function runNft(nft: string, script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(nft, ['-f', '/dev/stdin'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    child.on('error', (err) =>
      reject(errors.NFT_FAILED(`cannot run ${nft}: ${err.message}`, undefined, { cause: err })),
    );
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(errors.NFT_FAILED(`${nft} -f failed (exit ${code}): ${stderr.trim()}`));
    });
    child.stdin.end(script);
  });
}
