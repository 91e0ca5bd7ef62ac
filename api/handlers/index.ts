import type { Handler, OperationId } from '../context';
import * as activityLogs from './activity-logs';
import * as apiTokens from './api-tokens';
import * as backupJobs from './backup-jobs';
import * as copyJobs from './copy-jobs';
import * as cronLog from './cron-log';
import * as hosts from './hosts';
import * as jobs from './jobs';
import * as logs from './logs';
import * as me from './me';
import * as metrics from './metrics';
import * as notifications from './notifications';
import * as repoRuns from './repo-runs';
import * as repoStats from './repo-stats';
import * as repos from './repos';
import * as restores from './restores';
import * as schedulerTasks from './scheduler-tasks';
import * as schedules from './schedules';
import * as settings from './settings';
import * as snapshots from './snapshots';
import * as sshKeys from './ssh-keys';
import * as stats from './stats';
import * as system from './system';
import * as users from './users';
import * as webhooks from './webhooks';

/** Handlers by operationId: one for every operation of the contract (the type says so). */
export const handlers: Record<OperationId, Handler> = {
  getHealth: system.getHealth,
  getOpenApiDocument: system.getOpenApiDocument,
  getDocs: system.getDocs,
  getSwagger: system.getSwagger,
  getMe: me.getMe,
  listApiTokens: apiTokens.listApiTokens,
  createApiToken: apiTokens.createApiToken,
  getApiToken: apiTokens.getApiToken,
  updateApiToken: apiTokens.updateApiToken,
  revokeApiToken: apiTokens.revokeApiToken,
  deleteApiToken: apiTokens.deleteApiToken,
  listApiTokenLogs: logs.listApiTokenLogs,
  getJobsSummary: jobs.getJobsSummary,
  listRecentJobs: jobs.listRecentJobs,
  getWorkerStatus: jobs.getWorkerStatus,
  processJobs: jobs.processJobs,
  recoverJobs: jobs.recoverJobs,
  listActivityLogs: activityLogs.listActivityLogs,
  getStatsSummary: stats.getStatsSummary,
  getRepoRuntime: stats.getRepoRuntime,
  listSettings: settings.listSettings,
  getSetting: settings.getSetting,
  updateSetting: settings.updateSetting,
  listRepos: repos.listRepos,
  createRepo: repos.createRepo,
  getRepo: repos.getRepo,
  updateRepo: repos.updateRepo,
  deleteRepo: repos.deleteRepo,
  listSnapshots: snapshots.listSnapshots,
  getSnapshot: snapshots.getSnapshot,
  getRepoStats: repoStats.getRepoStats,
  getRepoStatsHistory: repoStats.getRepoStatsHistory,
  getMetrics: metrics.getMetrics,
  updateSnapshotTags: snapshots.updateSnapshotTags,
  deleteSnapshot: snapshots.deleteSnapshot,
  listSnapshotFiles: snapshots.listSnapshotFiles,
  checkRepo: repoRuns.checkRepo,
  listRepoRuns: repoRuns.listRepoRuns,
  getRepoRun: repoRuns.getRepoRun,
  listHosts: hosts.listHosts,
  createHost: hosts.createHost,
  getHost: hosts.getHost,
  updateHost: hosts.updateHost,
  deleteHost: hosts.deleteHost,
  testHost: hosts.testHost,
  listSshKeys: sshKeys.listSshKeys,
  createSshKey: sshKeys.createSshKey,
  getSshKey: sshKeys.getSshKey,
  deleteSshKey: sshKeys.deleteSshKey,
  testSshKey: sshKeys.testSshKey,
  listBackupJobs: backupJobs.listBackupJobs,
  createBackupJob: backupJobs.createBackupJob,
  getBackupJob: backupJobs.getBackupJob,
  updateBackupJob: backupJobs.updateBackupJob,
  deleteBackupJob: backupJobs.deleteBackupJob,
  runBackupJob: backupJobs.runBackupJob,
  listBackupJobRuns: backupJobs.listBackupJobRuns,
  getBackupJobRun: backupJobs.getBackupJobRun,
  listWebhooks: webhooks.listWebhooks,
  createWebhook: webhooks.createWebhook,
  listWebhookEvents: webhooks.listWebhookEvents,
  getWebhook: webhooks.getWebhook,
  updateWebhook: webhooks.updateWebhook,
  deleteWebhook: webhooks.deleteWebhook,
  testWebhook: webhooks.testWebhook,
  listWebhookDeliveries: webhooks.listWebhookDeliveries,
  redeliverWebhookDelivery: webhooks.redeliverWebhookDelivery,
  listBackupSchedules: schedules.listBackupSchedules,
  listCopySchedules: schedules.listCopySchedules,
  listSchedulerTasks: schedulerTasks.listSchedulerTasks,
  runSchedulerTask: schedulerTasks.runSchedulerTask,
  listCronLog: cronLog.listCronLog,
  listCronLogs: cronLog.listCronLogs,
  listNotifications: notifications.listNotifications,
  getUnreadNotificationCount: notifications.getUnreadNotificationCount,
  markNotificationRead: notifications.markNotificationRead,
  markAllNotificationsRead: notifications.markAllNotificationsRead,
  deleteNotification: notifications.deleteNotification,
  deleteReadNotifications: notifications.deleteReadNotifications,
  listRestores: restores.listRestores,
  createRestore: restores.createRestore,
  getRestore: restores.getRestore,
  listCopyJobs: copyJobs.listCopyJobs,
  createCopyJob: copyJobs.createCopyJob,
  getCopyJob: copyJobs.getCopyJob,
  updateCopyJob: copyJobs.updateCopyJob,
  deleteCopyJob: copyJobs.deleteCopyJob,
  runCopyJob: copyJobs.runCopyJob,
  listUsers: users.listUsers,
  createUser: users.createUser,
  getUser: users.getUser,
  updateUser: users.updateUser,
  deleteUser: users.deleteUser,
};
