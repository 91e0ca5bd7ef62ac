import { readFileSync } from 'node:fs';
import Koa from 'koa';

// The baseline: a bare Koa route serving, from memory, the JSON the real route returns.
const body = readFileSync(process.env.BENCH_BODY_FILE as string);
const app = new Koa();
app.use(async (ctx) => {
  if (ctx.path !== '/api/v1/repos') return;
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = body;
});
app.listen(Number(process.env.API_PORT), '127.0.0.1', () => console.log('bare koa ready'));
