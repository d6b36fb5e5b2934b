// ioredis 5's Pipeline constructor gives each pipeline its own `length` getter, a new closure per
// instance (Object.defineProperty(this, "length", …)). V8 cannot share a hidden class between
// objects whose accessors differ, so every pipeline (one per auto-pipelined tick, one per multi())
// gets a map of its own in the old generation, and that map keeps the pipeline, its commands and
// their replies alive through every young-generation collection until a full one: in the service
// about 6 MB promoted per scavenge and 10–15 ms scavenge pauses, the isolate benchmark's p99.
//
// The fix: the same constructor, with `length` once on the prototype. transaction.js and
// autoPipelining.js make pipelines with `new Pipeline_1.default(redis)`, read at each call, so
// replacing the module's export is enough. It is applied only to the constructor it was written
// against (the source is compared); another ioredis version keeps its own (and a test says so).
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// biome-ignore lint/suspicious/noExplicitAny: ioredis's internals are untyped
type Any = any;

/**
 * sha256 of the constructor this fix reproduces (ioredis 5.11's built/Pipeline.js, from
 * `constructor(redis)` to its closing brace): Commander's fields, Pipeline's, the client's
 * scripts and added built-ins copied on, the promise, then the getter.
 */
const EXPECTED_SHA256 = 'b8a01a00aa1c6726eeffe8f3216ff18e1037519a63668b91f4d3544447f0dcae';

const constructorSource = (cls: { toString(): string }): string => {
  const text = cls.toString();
  const start = text.indexOf('constructor(redis)');
  const end = text.indexOf('\n    }', start);
  return start === -1 || end === -1 ? '' : text.slice(start, end + 6);
};

const FIXED = Symbol.for('sandgate.pipelineLengthFix');

/** Whether pipelines are made without a per-instance `length` getter (installing the fix if it fits). */
export function installPipelineLengthFix(): boolean {
  const mod = require('ioredis/built/Pipeline.js') as { default: Any };
  const Original = mod.default;
  if (Original[FIXED]) return true;
  if (typeof Original !== 'function') return false;
  if (createHash('sha256').update(constructorSource(Original)).digest('hex') !== EXPECTED_SHA256) return false;

  // Commander's constructor, then Pipeline's, minus the getter.
  function Pipeline(this: Any, redis: Any) {
    this.options = {};
    this.scriptsSet = {};
    this.addedBuiltinSet = new Set();
    this.redis = redis;
    this.isPipeline = true;
    this.replyPending = 0;
    this._queue = [];
    this._result = [];
    this._transactions = 0;
    this._shaToScript = {};
    this.isCluster = redis.constructor.name === 'Cluster' || redis.isCluster;
    this.options = redis.options;
    for (const name of Object.keys(redis.scriptsSet)) {
      const script = redis.scriptsSet[name];
      this._shaToScript[script.sha] = script;
      this[name] = redis[name];
      this[`${name}Buffer`] = redis[`${name}Buffer`];
    }
    for (const name of redis.addedBuiltinSet) {
      this[name] = redis[name];
      this[`${name}Buffer`] = redis[`${name}Buffer`];
    }
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
  Object.defineProperty(Original.prototype, 'length', {
    get(this: { _queue: unknown[] }) {
      return this._queue.length;
    },
    configurable: true,
  });
  Pipeline.prototype = Original.prototype; // instanceof, methods and super calls as before
  Object.setPrototypeOf(Pipeline, Original); // statics
  Object.defineProperty(Pipeline, FIXED, { value: true });
  mod.default = Pipeline;
  return true;
}
