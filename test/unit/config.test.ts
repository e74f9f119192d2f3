import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_SCHEDULE_SECONDS, loadConfig, SETTINGS, unknownSettingWarnings } from '../../src/config.js';

describe('configuration', () => {
  it('has the documented defaults and is frozen', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      database: { kind: 'sqlite', path: './data/helpdesk.db' },
      adminToken: null,
      allowPrivateTargets: false,
      logLevel: 'info',
    });
    expect(config.retrySchedule).toEqual(DEFAULT_RETRY_SCHEDULE_SECONDS);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads every variable', () => {
    const config = loadConfig({
      HELPDESK_PORT: '9090',
      HELPDESK_HOST: '0.0.0.0',
      HELPDESK_DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/helpdesk',
      HELPDESK_ADMIN_TOKEN: 'x'.repeat(16),
      HELPDESK_RETRY_SCHEDULE: '0.2,0.5,1',
      HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
      HELPDESK_LOG_LEVEL: 'debug',
    });
    expect(config).toMatchObject({
      port: 9090,
      host: '0.0.0.0',
      database: { kind: 'postgres', connectionString: 'postgres://postgres@127.0.0.1:5432/helpdesk' },
      adminToken: 'x'.repeat(16),
      retrySchedule: [0.2, 0.5, 1],
      allowPrivateTargets: true,
      logLevel: 'debug',
    });
  });

  it('gives a request 30 s to arrive whole unless told otherwise', () => {
    expect(loadConfig({}).requestTimeoutSeconds).toBe(30);
    expect(loadConfig({ HELPDESK_REQUEST_TIMEOUT_SECONDS: '2.5' }).requestTimeoutSeconds).toBe(2.5);
  });

  it('serves a worker\'s /healthz and /metrics on port 8081 unless HELPDESK_WORKER_PORT says another, or off', () => {
    expect(loadConfig({}).workerPort).toBe(8081);
    expect(loadConfig({ HELPDESK_WORKER_PORT: '9100' }).workerPort).toBe(9100);
    expect(loadConfig({ HELPDESK_WORKER_PORT: 'off' }).workerPort).toBeNull();
    expect(loadConfig({ HELPDESK_WORKER_PORT: 'OFF' }).workerPort).toBeNull();
  });

  it('tries the retention lease every 10 minutes unless HELPDESK_RETENTION_INTERVAL_SECONDS says', () => {
    expect(loadConfig({}).retentionIntervalSeconds).toBe(600);
    expect(loadConfig({ HELPDESK_RETENTION_INTERVAL_SECONDS: '1.5' }).retentionIntervalSeconds).toBe(1.5);
  });

  it('limits each key to 100 requests/s with bursts of twice the rate unless told otherwise', () => {
    expect(loadConfig({}).rateLimit).toEqual({ perSecond: 100, burst: 200 });
    expect(loadConfig({ HELPDESK_RATE_LIMIT: '0.4' }).rateLimit).toEqual({ perSecond: 0.4, burst: 1 });
    expect(loadConfig({ HELPDESK_RATE_LIMIT: '5', HELPDESK_RATE_LIMIT_BURST: '7' }).rateLimit).toEqual({ perSecond: 5, burst: 7 });
    expect(loadConfig({ HELPDESK_RATE_LIMIT: 'off' }).rateLimit).toBeNull();
  });

  it.each(['HELPDESK_ALLOW_PRIVATE_TARGETS', 'HELPDESK_METRICS', 'HELPDESK_SERVE_WORKER', 'HELPDESK_SENDING_THREAD'])('reads %s as every switch: true/1/yes/on, false/0/no/off, any case', (variable) => {
    const read = (value: string) => {
      const config = loadConfig({ [variable]: value });
      return { HELPDESK_ALLOW_PRIVATE_TARGETS: config.allowPrivateTargets, HELPDESK_METRICS: config.metricsEnabled, HELPDESK_SERVE_WORKER: config.serveWorker, HELPDESK_SENDING_THREAD: config.sendingThread }[variable];
    };
    for (const value of ['true', 'TRUE', '1', 'yes', 'Yes', 'on', ' on ']) expect(read(value), value).toBe(true);
    for (const value of ['false', 'False', '0', 'no', 'off', 'OFF']) expect(read(value), value).toBe(false);
    for (const value of ['', 'y', '2', 'enabled', 'ture']) expect(() => read(value), value).toThrow(`${variable} must be true or false (also 1/0, yes/no, on/off), not "${value}"`);
  });

  it('writes readable log lines on a terminal and JSON lines elsewhere, unless HELPDESK_LOG_FORMAT says', () => {
    expect(loadConfig({}, true).logFormat).toBe('pretty');
    expect(loadConfig({}, false).logFormat).toBe('json');
    expect(loadConfig({ HELPDESK_LOG_FORMAT: 'json' }, true).logFormat).toBe('json');
    expect(loadConfig({ HELPDESK_LOG_FORMAT: 'pretty' }, false).logFormat).toBe('pretty');
    expect(() => loadConfig({ HELPDESK_LOG_FORMAT: 'text' })).toThrow('HELPDESK_LOG_FORMAT must be "json" or "pretty"');
  });

  it('warns about HELPDESK_* variables that nothing reads, naming the likely setting', () => {
    expect(unknownSettingWarnings({ HELPDESK_PORT: '1', PATH: '/bin', HELPDESK_TEST_REQUIRE_POSTGRES: 'true' })).toEqual([]);
    expect(unknownSettingWarnings({ HELPDESK_ALLOW_PRIVATE_TARGET: 'true', HELPDESK_COLOUR: 'blue' })).toEqual([
      'HELPDESK_ALLOW_PRIVATE_TARGET is not a Helpdesk setting and is ignored (did you mean HELPDESK_ALLOW_PRIVATE_TARGETS?); the settings are listed in docs/configuration.md',
      'HELPDESK_COLOUR is not a Helpdesk setting and is ignored; the settings are listed in docs/configuration.md',
    ]);
  });

  it('lists every setting it reads', () => {
    // Each name in SETTINGS, set to a bad value, is refused by name: nothing is listed that is not read.
    const refusedWhenBad = SETTINGS.filter((name) => {
      try {
        // The OTEL_* variables are read only when tracing is on.
        const tracingOn = name.startsWith('OTEL_') && name !== 'OTEL_EXPORTER_OTLP_ENDPOINT' ? { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' } : {};
        loadConfig({ ...tracingOn, [name]: name === 'HELPDESK_HOST' ? '' : 'x', ...(name === 'HELPDESK_SECRET_KEY_FILE' ? { HELPDESK_SECRET_KEY: 'y' } : {}) });
        return false;
      } catch (error) {
        return (error as Error).message.includes(name) || (error as Error).message.includes('HELPDESK_SECRET_KEY');
      }
    });
    // A host and a service name are names: any text will do.
    expect(SETTINGS.filter((name) => !refusedWhenBad.includes(name))).toEqual(['HELPDESK_HOST', 'OTEL_SERVICE_NAME']);
  });

  it.each([
    [{ HELPDESK_ADMIN_TOKEN: 'short' }, /HELPDESK_ADMIN_TOKEN/],
    [{ HELPDESK_PORT: 'eighty' }, /HELPDESK_PORT/],
    [{ HELPDESK_PORT: '70000' }, /HELPDESK_PORT/],
    [{ HELPDESK_DATABASE_URL: 'mysql://x' }, /HELPDESK_DATABASE_URL/],
    [{ HELPDESK_RETRY_SCHEDULE: '1,,2' }, /HELPDESK_RETRY_SCHEDULE/],
    [{ HELPDESK_RETRY_SCHEDULE: '-1' }, /HELPDESK_RETRY_SCHEDULE/],
    [{ HELPDESK_LOG_LEVEL: 'loud' }, /HELPDESK_LOG_LEVEL/],
    [{ HELPDESK_DELIVERY_LEASE_SECONDS: '15' }, /HELPDESK_DELIVERY_LEASE_SECONDS must be a number of seconds, at least 20/],
    [{ HELPDESK_ADMIN_TOKEN: 'has white space in it' }, /HELPDESK_ADMIN_TOKEN must not contain white space/],
    [{ HELPDESK_REQUEST_TIMEOUT_SECONDS: '0' }, /HELPDESK_REQUEST_TIMEOUT_SECONDS must be a number of seconds from 1 to 3600/],
    [{ HELPDESK_REQUEST_TIMEOUT_SECONDS: '1h' }, /HELPDESK_REQUEST_TIMEOUT_SECONDS/],
    [{ HELPDESK_RATE_LIMIT: '0' }, /HELPDESK_RATE_LIMIT must be "off" or a number of requests per second above 0/],
    [{ HELPDESK_RATE_LIMIT: 'fast' }, /HELPDESK_RATE_LIMIT must be "off"/],
    [{ HELPDESK_RATE_LIMIT_BURST: '0' }, /HELPDESK_RATE_LIMIT_BURST must be a whole number of requests, at least 1/],
    [{ HELPDESK_RATE_LIMIT_BURST: '2.5' }, /HELPDESK_RATE_LIMIT_BURST/],
    [{ HELPDESK_RATE_LIMIT: 'off', HELPDESK_RATE_LIMIT_BURST: '10' }, /HELPDESK_RATE_LIMIT_BURST has no effect with HELPDESK_RATE_LIMIT=off/],
    [{ HELPDESK_WORKER_PORT: 'none' }, /HELPDESK_WORKER_PORT must be a port number or "off"/],
    [{ HELPDESK_WORKER_PORT: '70000' }, /HELPDESK_WORKER_PORT must be at most 65535/],
    [{ HELPDESK_RETENTION_INTERVAL_SECONDS: '0.5' }, /HELPDESK_RETENTION_INTERVAL_SECONDS must be a number of seconds from 1 to 86400/],
    [{ HELPDESK_RETENTION_INTERVAL_SECONDS: '10m' }, /HELPDESK_RETENTION_INTERVAL_SECONDS/],
  ])('rejects %o', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  describe('tracing (OTEL_*)', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };

    it('is off unless OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_ENDPOINT turns it on, and OTEL_SDK_DISABLED wins', () => {
      expect(loadConfig({}).tracing).toBeNull();
      // The traces endpoint only says where: it does not turn tracing on (docs/configuration.md).
      expect(loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces', OTEL_SERVICE_NAME: 'x' }).tracing).toBeNull();
      expect(loadConfig({ OTEL_TRACES_EXPORTER: 'otlp' }).tracing?.endpoint).toBe('http://localhost:4318/v1/traces');
      expect(loadConfig(endpoint).tracing?.endpoint).toBe('http://collector:4318/v1/traces');
      expect(loadConfig({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' }).tracing).toBeNull();
      expect(loadConfig({ ...endpoint, OTEL_SDK_DISABLED: 'true' }).tracing).toBeNull();
      // Off, the other variables are not even read: a bad one does not stop the start.
      expect(loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).tracing).toBeNull();
    });

    it('reads the endpoint, protocol, headers, resource and sampler as the OpenTelemetry specification spells them', () => {
      const tracing = loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector.example/otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s%3Dcret, x-team = ops',
        OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-team=support',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,service.name=from-resource',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
        OTEL_BSP_SCHEDULE_DELAY: '200',
      }).tracing!;
      expect(tracing).toMatchObject({
        endpoint: 'https://collector.example/otlp/v1/traces',
        protocol: 'http/json',
        headers: { 'api-key': 's=cret', 'x-team': 'support' },
        serviceName: 'from-resource',
        sampler: 'parentbased_traceidratio',
        samplerRatio: 0.25,
        batchDelayMs: 200,
        exportTimeoutMs: 10_000,
      });
      expect(tracing.resourceAttributes).toMatchObject({ 'deployment.environment.name': 'prod', 'service.version': expect.any(String) });
      expect(loadConfig({ ...endpoint, OTEL_SERVICE_NAME: 'helpdesk-api', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://other:4318/custom' }).tracing).toMatchObject({
        serviceName: 'helpdesk-api',
        endpoint: 'http://other:4318/custom',
        protocol: 'http/protobuf',
        sampler: 'parentbased_always_on',
      });
    });

    it.each([
      [{ OTEL_TRACES_EXPORTER: 'jaeger' }, /OTEL_TRACES_EXPORTER must be "otlp" or "none"/],
      [{ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /OTEL_EXPORTER_OTLP_PROTOCOL must be http\/protobuf or http\/json \(gRPC is not supported\)/],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /OTEL_EXPORTER_OTLP_ENDPOINT must be an http:\/\/ or https:\/\/ URL/],
      [{ ...endpoint, OTEL_EXPORTER_OTLP_HEADERS: 'no-equals-sign' }, /OTEL_EXPORTER_OTLP_HEADERS must be a comma-separated list of key=value/],
      [{ ...endpoint, OTEL_TRACES_SAMPLER_ARG: '1.5' }, /OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1/],
      [{ ...endpoint, OTEL_SDK_DISABLED: 'maybe' }, /OTEL_SDK_DISABLED must be true or false/],
    ])('rejects %o', (env, message) => {
      expect(() => loadConfig(env)).toThrow(message);
    });
  });
});
