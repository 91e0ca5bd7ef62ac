/** Page and per_page as validated (and defaulted) by the contract. */
export interface Page {
  page: number;
  perPage: number;
  offset: number;
}

export function pageOf(query: Record<string, unknown>): Page {
  const page = Number(query.page ?? 1);
  const perPage = Number(query.per_page ?? 50);
  return { page, perPage, offset: (page - 1) * perPage };
}

export function pageMeta(page: Page, total: number) {
  return { page: page.page, per_page: page.perPage, total, total_pages: Math.ceil(total / page.perPage) };
}
