import { cpSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const wwwroot = resolve(here, '../src/EmailTracking.Server/wwwroot');
/** The Outlook add-in's files; the manifest names these URLs (/addin/compose.html, /addin/launchevent.js, icons). */
const addin = resolve(wwwroot, 'addin');

/**
 * One row per surface under src/. Each surface is built on its own (`vite build --mode <surface>`), because each is
 * served under its own path by the server and emptied on its own build; `input` is a multi-page map, so a surface
 * with several pages (the task pane and its commands page, say) lists them all here.
 */
const surfaces = {
  viewer: {
    root: 'src/viewer',
    base: '/viewer/',
    outDir: resolve(wwwroot, 'viewer'),
    input: { index: 'src/viewer/index.html' },
    plugins: [copyPdfjsResources()],
  },
  // The Outlook task panes (compose and read). Their pages sit at the surface's root so they are emitted as
  // /addin/compose.html and /addin/read.html; public-addin/ brings the icons and launchevent.html, unhashed.
  outlook: {
    root: 'src/outlook',
    base: '/addin/',
    outDir: addin,
    input: { compose: 'src/outlook/compose.html', read: 'src/outlook/read.html' },
    plugins: [],
    publicDir: 'public-addin',
  },
  // The on-send handler. Classic Outlook on Windows loads this file alone in a JavaScript-only runtime (no modules,
  // no page), so it is one classic script: an IIFE with everything inlined, under the fixed name the manifest gives.
  // Built after `outlook`, into the same folder, which it must not empty.
  'outlook-launchevent': {
    root: 'src/outlook',
    base: '/addin/',
    outDir: addin,
    input: {},
    plugins: [],
    script: { entry: 'src/outlook/launchevent/main.ts', fileName: 'launchevent.js', name: 'EmailTrackingLaunchEvent' },
  },
} satisfies Record<string, SurfaceConfig>;

interface SurfaceConfig {
  root: string;
  base: string;
  outDir: string;
  input: Record<string, string>;
  plugins: Plugin[];
  /** Files copied as they are into outDir (a folder of web-taskpane/); none when absent. */
  publicDir?: string;
  /** A single classic script (IIFE) instead of pages: built in library mode beside the pages of the same outDir. */
  script?: { entry: string; fileName: string; name: string };
}

export default defineConfig(({ mode }) => {
  const surface: SurfaceConfig | undefined = (surfaces as Record<string, SurfaceConfig>)[mode];
  if (!surface) {
    throw new Error(`Unknown surface "${mode}": build with --mode ${Object.keys(surfaces).join(' | ')}`);
  }
  if (surface.script) {
    const script = surface.script;
    return {
      root: resolve(here, surface.root),
      base: surface.base,
      publicDir: false,
      plugins: surface.plugins,
      // Library mode leaves process.env alone; nothing must be left for a runtime that has no `process`.
      define: { 'process.env.NODE_ENV': JSON.stringify('production') },
      build: {
        outDir: surface.outDir,
        emptyOutDir: false,
        target: 'es2022',
        minify: true,
        lib: { entry: resolve(here, script.entry), formats: ['iife'], name: script.name, fileName: () => script.fileName },
        // MSAL is most of this file; it is one file fetched once per runtime, so the size warning says nothing here.
        chunkSizeWarningLimit: 1024,
      },
    };
  }
  return {
    root: resolve(here, surface.root),
    // The viewer page is served at /d/{token}, not under /viewer/, so every asset URL must be absolute.
    base: surface.base,
    publicDir: surface.publicDir ? resolve(here, surface.publicDir) : false,
    plugins: surface.plugins,
    build: {
      outDir: surface.outDir,
      emptyOutDir: true,
      target: 'es2022',
      // The server's CSP has no 'unsafe-inline': nothing may be inlined into the HTML as a data: URL or a <script>.
      assetsInlineLimit: 0,
      modulePreload: { polyfill: false },
      // pdf.js alone is ~400 kB minified; it is one cached file, so the warning says nothing useful here.
      chunkSizeWarningLimit: 1024,
      rollupOptions: {
        input: Object.fromEntries(
          Object.entries(surface.input).map(([name, path]) => [name, resolve(here, path)]),
        ),
        output: {
          // The pdf.js worker is loaded as a module worker, which browsers accept only with a JavaScript MIME type;
          // .js is mapped by every static file server, .mjs not by all (ASP.NET's default map among them).
          assetFileNames: (asset) =>
            (asset.names[0] ?? '').endsWith('.mjs') ? 'assets/[name]-[hash].js' : 'assets/[name]-[hash][extname]',
        },
      },
    },
  };
});

/**
 * pdf.js fetches these on demand only, for PDFs that need them: CMaps for CJK text with non-embedded fonts, the
 * standard fonts for the 14 base fonts when not embedded, WebAssembly decoders for JPEG 2000 / JBIG2 images and the
 * ICC profile for CMYK colour. They are copied unhashed, beside the bundle, because pdf.js builds their names itself.
 */
function copyPdfjsResources(): Plugin {
  const from = resolve(here, 'node_modules/pdfjs-dist');
  let outDir = '';
  return {
    name: 'copy-pdfjs-resources',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    writeBundle() {
      for (const dir of ['cmaps', 'standard_fonts', 'wasm', 'iccs']) {
        cpSync(resolve(from, dir), resolve(outDir, 'pdfjs', dir), { recursive: true });
      }
    },
  };
}
