// `nonstop spa-keygen`: makes SPA keys for one client in fwknop's own text form, so that one
// output serves `nonstop knock --spa-keys`, a broker's `ssh.knock.spa.keyFile`, the fwknop client
// (`--key-base64-rijndael`, `--key-base64-hmac`) and fwknopd's access.conf; with --client, also
// the entry for the guard config's "spa.clients".
import { chmodSync, writeFileSync } from 'node:fs';
import { formatSpaKeyFile, generateSpaKeys } from '../knock/spa.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export const spaKeygenCommand: Command = {
  name: 'spa-keygen',
  help: `Usage: nonstop spa-keygen [--out FILE] [--client NAME]

Prints a fresh pair of SPA keys as \`fwknop --key-gen\` does:
  KEY_BASE64: ...        the Rijndael key
  HMAC_KEY_BASE64: ...   the HMAC-SHA256 key

  --out FILE      write the two lines to FILE (mode 0600) instead of stdout: the file a broker's
                  "ssh.knock.spa.keyFile" or \`nonstop knock --spa-keys\` reads
  --client NAME   also print (on stdout) the JSON entry for the guard config's "spa.clients"
The keys are made once and stored nowhere else: keep every copy private.`,
  run(argv) {
    const { values } = parseCommandArgs(argv, { out: { type: 'string' }, client: { type: 'string' } });
    if (values.help) {
      console.log(this.help);
      return Promise.resolve(0);
    }
    const client = values.client;
    if (client !== undefined && !NAME.test(client))
      throw new UsageError('--client NAME: a-z, 0-9, ., _, - (up to 63)');
    const key = generateSpaKeys(client ?? 'client');
    const text = formatSpaKeyFile(key);
    if (values.out !== undefined) {
      try {
        writeFileSync(values.out, text, { mode: 0o600, flag: 'wx' });
        chmodSync(values.out, 0o600);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new UsageError(
          code === 'EEXIST'
            ? `--out ${values.out} exists; keys are never written over (remove it first, or choose another name)`
            : `--out: cannot write ${values.out} (${code ?? String(err)})`,
        );
      }
    } else if (client === undefined) {
      process.stdout.write(text);
    }
    if (client !== undefined) {
      const entry = {
        name: client,
        key: key.encryptionKey.toString('base64'),
        hmacKey: key.hmacKey.toString('base64'),
      };
      console.log(
        JSON.stringify(
          values.out === undefined ? { keyFile: text, guardClient: entry } : { guardClient: entry },
          null,
          2,
        ),
      );
    }
    return Promise.resolve(0);
  },
};
