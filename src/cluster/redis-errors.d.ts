// ioredis's declarations import 'redis-errors', which ships none; its error classes are not used here.
declare module 'redis-errors';
