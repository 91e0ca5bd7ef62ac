import type { ApiContext } from '../context';
import { swaggerUiPage } from '../swagger-ui';

export async function getHealth(ctx: ApiContext): Promise<void> {
  ctx.body = { status: 'ok', time: new Date().toISOString() };
}

export async function getOpenApiDocument(ctx: ApiContext): Promise<void> {
  ctx.set('Cache-Control', 'public, max-age=300');
  ctx.body = ctx.services.document;
}

export async function getDocs(ctx: ApiContext): Promise<void> {
  ctx.type = 'text/html; charset=utf-8';
  ctx.body = swaggerUiPage();
}

export const getSwagger = getDocs;
