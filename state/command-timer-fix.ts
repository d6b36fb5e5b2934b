// ioredis 5's Command._clearTimers() runs when each command is answered: it clears the command's
// deadline timer (the connection's commandTimeout, which every connection here has) and then
// `delete`s the property. Deleting a property turns the object into a dictionary (V8 drops its
// hidden class), so every answered command became a slow object: about 30 µs of the main
// thread's time per run in the profile, and more for the collector.
//
// The fix: the same method, with the properties set to undefined instead of deleted (setTimeout()
// and setBlockingTimeout() test them for truthiness, so undefined reads as absent). It is applied
// only to the method it was written against (the source is compared); another ioredis version
// keeps its own (and a test says so).
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// biome-ignore lint/suspicious/noExplicitAny: ioredis's internals are untyped
type Any = any;

/** sha256 of `_clearTimers` in ioredis 5.11's built/Command.js, as Function.prototype.toString gives it. */
const EXPECTED_SHA256 = '1d749b7e98d55e4fef32624b91a13ea913c0ad0a680f8d19ef6cae1b6ed5a84f';

const FIXED = Symbol.for('sandgate.commandTimerFix');

export const clearTimersSource = (proto: { _clearTimers?: unknown }): string =>
  typeof proto._clearTimers === 'function' ? proto._clearTimers.toString() : '';

/** Whether answered commands keep their shape (installing the fix if it fits). */
export function installCommandTimerFix(): boolean {
  const proto = (require('ioredis/built/Command.js') as { default: Any }).default?.prototype;
  if (!proto) return false;
  if (proto[FIXED]) return true;
  if (createHash('sha256').update(clearTimersSource(proto)).digest('hex') !== EXPECTED_SHA256) return false;
  proto._clearTimers = function _clearTimers(this: Any) {
    if (this._commandTimeoutTimer) {
      clearTimeout(this._commandTimeoutTimer);
      this._commandTimeoutTimer = undefined;
    }
    if (this._blockingTimeoutTimer) {
      clearTimeout(this._blockingTimeoutTimer);
      this._blockingTimeoutTimer = undefined;
    }
  };
  Object.defineProperty(proto, FIXED, { value: true });
  return true;
}
