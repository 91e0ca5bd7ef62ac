import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Router from '@koa/router';
// The absolute-path module only: the package's main entry loads the whole UI bundle into the API process.
import getAbsoluteFSPath from 'swagger-ui-dist/absolute-path';
import { API_ROOT } from './contract';

const ASSETS_PATH = `${API_ROOT}/docs/assets`;
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'application/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

/** The Swagger UI page for /docs and /swagger, loading its assets from this server (no CDN). */
export function swaggerUiPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Backup Control Plane API</title>
  <link rel="stylesheet" href="${ASSETS_PATH}/swagger-ui.css">
  <link rel="icon" type="image/png" href="${ASSETS_PATH}/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${ASSETS_PATH}/swagger-ui-bundle.js"></script>
  <script src="${ASSETS_PATH}/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: '${API_ROOT}/openapi.json',
      dom_id: '#swagger-ui',
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: 'StandaloneLayout',
      persistAuthorization: true,
      validatorUrl: null,
    });
  </script>
</body>
</html>
`;
}

/** Serves the few swagger-ui-dist files the page needs, from node_modules, cached by the browser. */
export function swaggerUiAssets(): Router {
  const router = new Router();
  const root = getAbsoluteFSPath();
  router.get(`${ASSETS_PATH}/:file`, async (ctx, next) => {
    const type = ASSETS[ctx.params.file ?? ''];
    if (!type) return next();
    ctx.type = type;
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = await readFile(join(root, ctx.params.file as string));
  });
  return router;
}
