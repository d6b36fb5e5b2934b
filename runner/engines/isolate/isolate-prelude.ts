// Code that runs inside the isolate before and after the user's script. Kept as plain strings so
// the host never hands the isolate a host object.

/**
 * A function expression, called once per isolate with: `write`, a synchronous host callback
 * (fd, line) → boolean ("keep writing"); `callTool`, an ivm.Reference to the host's async
 * (name, argsJson) → answer JSON behind `tools.call`. It lives
 * only in this closure: a script that got hold of it could walk its get/apply to host objects,
 * so it is never stored, returned or passed on. Only strings cross. The console formats
 * inside the isolate, so only strings cross, and it goes quiet once the host says the cap is hit.
 * WebAssembly goes: its async compile waits on a platform task that never comes here (a hang,
 * not an error), and it is attack surface no agent script needs. Returns the host's checks of
 * the completion value (isolate-run.ts), kept by the host alone.
 */
export const PRELUDE = `(function (write, callTool) {
delete globalThis.WebAssembly;
let open = true;
const fmt = (v) => {
  if (typeof v === 'string') return v;
  try {
    if (v instanceof Error) return v.stack || String(v);
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s;
  } catch {
    try { return String(v); } catch { return '[unprintable]'; }
  }
};
const make = (fd) => (...args) => {
  if (!open) return;
  open = write(fd, args.map(fmt).join(' ') + '\\n');
};
const tools = Object.freeze({
  /** Calls an allow-listed tool through Sandgate's policy, approval, budget and audit path. */
  call: async (name, args) => {
    const json = JSON.stringify(args === undefined ? {} : args);
    const answer = JSON.parse(await callTool.apply(undefined, [String(name), json], { result: { promise: true, copy: true } }));
    if (answer.ok) return answer.value;
    const e = new Error(answer.message);
    e.code = answer.code;
    throw e;
  },
});
Object.defineProperty(globalThis, 'tools', { value: tools, writable: false, configurable: false, enumerable: false });
Object.defineProperty(globalThis, 'console', {
  value: Object.freeze({ log: make(1), info: make(1), debug: make(1), error: make(2), warn: make(2) }),
  writable: false,
  configurable: false,
  enumerable: false,
});
// The host's two questions about a completion value, made now, before the script runs (compiled
// once per isolate, off the run's path; answered with the builtins the script started with, so
// one it replaces or changes does not count):
// isPromise: whether to await it; a value the check cannot answer for is awaited.
// toJson: its JSON text, undefined for undefined, null when it has none.
const P = Promise;
const hasInstance = Function.prototype[Symbol.hasInstance];
const apply = Reflect.apply;
const stringify = JSON.stringify;
return {
  isPromise: (v) => {
    try {
      return apply(hasInstance, P, [v]);
    } catch {
      return true;
    }
  },
  toJson: (v) => {
    if (v === undefined) return undefined;
    try {
      const s = stringify(v);
      return s === undefined ? null : s;
    } catch {
      return null;
    }
  },
};
})`;
