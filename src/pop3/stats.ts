/**
 * Counters kept by the engine since start. The monitor protocol and the metrics endpoint read this
 * one object, so they can never disagree.
 */
export class ServerStats {
  readonly startedAt = Date.now();
  connectionsTotal = 0;
  connectionsOpen = 0;
  sessionsAuthenticated = 0;
  loginsSucceeded = 0;
  loginsFailed = 0;
  bytesIn = 0;
  bytesOut = 0;
  messagesRetrieved = 0;
  messagesDeleted = 0;
}
