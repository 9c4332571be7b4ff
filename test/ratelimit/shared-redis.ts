import { redisServerAvailable, startRedisServer } from "../support/redis-server.js";

/** True when Redis tests can run: CI gave a REDIS_URL or `redis-server` is installed. */
export const redisTestsEnabled = Boolean(process.env.REDIS_URL) || redisServerAvailable();

/** CI's Redis when REDIS_URL is set (tests must then use unique tags), else a private server for this file. */
export async function sharedRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const url = process.env.REDIS_URL;
  if (url) return { url, stop: async () => {} };
  const server = await startRedisServer();
  return { url: server.url, stop: () => server.stop() };
}
