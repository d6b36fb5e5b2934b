// Queue names are part of the contract: API processes add, runner processes take.
import type { EngineName } from './profile.ts';

export const executionQueueName = (engine: EngineName): string => `executions-${engine}`;

/** Tool calls, apart from code runs: a slow mail gateway never holds up a sandbox. */
export const ACTIONS_QUEUE = 'actions';

/** Alert deliveries and re-notifications: a failing receiver is retried here, never on a request. */
export const NOTIFY_QUEUE = 'notify';
