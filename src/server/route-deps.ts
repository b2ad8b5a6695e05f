// What every route receives from the composition root (app.ts).
import type { ServerConfig } from './config.ts';
import type { ServedModel } from './served-model.ts';

export interface RouteDeps {
  config: ServerConfig;
  /** The loaded model; throws a 503 error while models are still loading. */
  model(): ServedModel;
}
