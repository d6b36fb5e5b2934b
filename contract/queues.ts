// Queue names are part of the contract: API processes add, runner processes take.
import type { EngineName } from './profile.ts';

export const executionQueueName = (engine: EngineName): string => `executions-${engine}`;

/** Tool calls, apart from code runs: a slow mail gateway never holds up a sandbox. */
export const ACTIONS_QUEUE = 'actions';
