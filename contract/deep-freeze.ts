// Values shared by reference (parsed agents, profiles, tool definitions) are frozen all the way
// down: a change is a new object, so whatever is derived from one (a Cedar entity) can be kept.

/** Freezes `value` and everything it holds; returns it. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
