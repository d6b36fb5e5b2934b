// Every error leaves as {error:{code,message}} with the status from the one registry.
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ERRORS, type ErrorCode, errorBody, isSandgateError } from '../contract/errors.ts';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
  FST_ERR_VALIDATION: 'validation_failed',
};

/**
 * ioredis and BullMQ errors that mean Redis (a node, or a Redis Cluster's slots) cannot be reached.
 * "same slots allocation group": an auto-pipelined batch grouped by node before the cluster's slot
 * map changed under it (a master failed); the keys of each command are one slot (key-slots test).
 */
const REDIS_DOWN =
  /ECONNREFUSED|ETIMEDOUT|Connection is closed|Stream isn't writeable|max retries per request|Command timed out|CLUSTERDOWN|TRYAGAIN|Too many Cluster redirections|Cluster isn't ready|Failed to refresh slots cache|None of startup nodes is available|belong to the same slots allocation group/i;
function isRedisDown(e: FastifyError): boolean {
  return REDIS_DOWN.test(e.message) || e.name === 'MaxRetriesPerRequestError' || e.name === 'ClusterAllFailedError';
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (isSandgateError(err)) {
      return reply.code(err.status).headers(err.headers).send(errorBody(err.code, err.message));
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const first = err.validation[0];
      const where = err.validationContext ?? 'request';
      const field = first?.instancePath ? `${where}${first.instancePath.replaceAll('/', '.')}` : where;
      const message = `${field}: ${first?.message ?? 'invalid'}`;
      return reply.code(400).send(errorBody('validation_failed', message));
    }
    const mapped = err.code ? FASTIFY_CODES[err.code] : undefined;
    if (mapped) {
      const message =
        mapped === 'body_too_large'
          ? `the request body is larger than the ${request.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit} byte limit`
          : mapped === 'invalid_json'
            ? `the body is not valid JSON: ${err.message}`
            : err.message;
      return reply.code(ERRORS[mapped]).send(errorBody(mapped, message));
    }
    if (isRedisDown(err)) {
      request.log.error({ err }, 'redis unavailable');
      return reply.code(503).send(errorBody('dependency_unavailable', 'Redis is unavailable; retry later'));
    }
    request.log.error({ err }, 'unhandled error');
    return reply.code(500).send(errorBody('internal_error', 'internal error; see the server log'));
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(errorBody('route_not_found', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
}
