export function totals(file?: string): { ok: boolean; line: string }
