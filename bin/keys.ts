// `npm run keys -- rotate [--dir DATA_DIR]`: adds a new token-signing key (see signing-keys.ts).
import { loadConfig } from '../contract/config.ts';
import { rotateSigningKey } from '../guard/identity/signing-keys.ts';

const [command, flag, value] = process.argv.slice(2);
if (command !== 'rotate' || (flag !== undefined && flag !== '--dir')) {
  console.error('usage: npm run keys -- rotate [--dir DATA_DIR]');
  process.exit(2);
}
let dir: string;
try {
  // The same parsed configuration as the service.
  dir = value ?? loadConfig().SANDGATE_DATA_DIR;
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
const kid = await rotateSigningKey(dir);
console.log(`new signing key ${kid} in ${dir}/keys/signing.json; restart the API processes to sign with it`);
