// What every service needs: the store, the configuration, the clock and a logger.
import type { Clock } from '../core/clock.ts';
import type { Config } from '../config/config.ts';
import type { Store } from '../store/index.ts';

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export interface ServiceContext {
  store: Store;
  config: Config;
  clock: Clock;
  log: Logger;
}
