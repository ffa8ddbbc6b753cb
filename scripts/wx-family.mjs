// The esbuild plugin that makes a build the wx family's alone (miniprogram_dist: see
// build-miniprogram.mjs): src/platform's alipay.ts and websocket.ts are swapped for their
// .stub.ts, which keep the exports and say where the real thing is.
import path from 'node:path'

export const wxFamily = {
  name: 'wx-family',
  setup(b) {
    b.onResolve({ filter: /^\.\/(websocket|alipay)$/ }, (args) =>
      args.importer.includes(`${path.sep}src${path.sep}platform${path.sep}`)
        ? { path: path.join(args.resolveDir, `${args.path.slice(2)}.stub.ts`) }
        : undefined,
    )
  },
}
