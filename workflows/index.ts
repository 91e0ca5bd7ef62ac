// Every workflow the worker serves; the worker bundles this file.
export * from './backup-job-run';
export * from './repository';
export * from './connection-tests';
export * from './repository-lock';
export * from './repository-maintenance';
export * from './maintenance-pass';
export * from './copy-job-run';
export * from './restore';
export * from './webhook-delivery';
export * from './scheduled-backup';
export * from './notification-delivery';
export * from './scheduled-copy';
export * from './scheduler-task';
