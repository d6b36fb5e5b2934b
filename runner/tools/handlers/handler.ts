// What a tool handler returns: the call's outcome as data (the lifecycle's ToolOutcome). A refused
// or failed call is a result with an error, never an exception; exceptions are faults of
// Sandgate itself.
export type { ToolOutcome as HandlerResult } from '../../../guard/lifecycle/action-lifecycle.ts';
