// The component's entry: wraps the plugin's module (bundled in as
// `weir-stage`) into weir's `transform` interface. Part of the SDK; plugin
// authors do not edit it.

import * as stage from 'weir-stage';
import { Output, log } from 'weir-plugin';

function reason(e) {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

if (typeof stage.process !== 'function') {
  throw new Error('the stage module must export a function process(events)');
}

export const transform = {
  init(config) {
    if (stage.init) {
      try {
        stage.init(Object.fromEntries(config));
      } catch (e) {
        throw reason(e);
      }
    }
  },
  process(batch) {
    let out;
    try {
      out = stage.process(batch);
    } catch (e) {
      // The component traps on an exception without saying why: the
      // message goes to the host's log first, and weir puts it into the
      // dead letter's reason.
      log('error', `uncaught ${reason(e)}`);
      throw e;
    }
    if (out instanceof Output) {
      return { events: out.events, errors: out.errors };
    }
    if (Array.isArray(out)) {
      return { events: out, errors: [] };
    }
    return { events: out.events ?? [], errors: out.errors ?? [] };
  },
  checkpointExport() {
    return stage.checkpointExport ? stage.checkpointExport() : new Uint8Array(0);
  },
  checkpointImport(state) {
    if (stage.checkpointImport) {
      try {
        stage.checkpointImport(state);
      } catch (e) {
        throw reason(e);
      }
    }
  },
};
