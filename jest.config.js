/**
 * Jest 30 with @swc/jest. The test stack (Postgres, Temporal dev server, restic, sshd,
 * rclone) is provisioned once per run in test/support/global-setup.ts and handed to the
 * test files through environment variables (read them with test/support/stack-env.ts).
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j)sx?$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript' },
          target: 'es2022',
        },
        module: { type: 'commonjs' },
      },
    ],
  },
  // openapi-backend depends on an ESM-only package, which jest's CommonJS runtime must transform.
  transformIgnorePatterns: ['/node_modules/(?!@apidevtools/json-schema-ref-parser/)'],
  testTimeout: 180000,
  maxWorkers: 2,
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  setupFiles: [],
};
