/** The dashboard page, read once: plain HTML, CSS and a module script, no build step and no token inside. */
import { readFileSync } from 'node:fs';

export const dashboardHtml = readFileSync(new URL('./dashboard.html', import.meta.url), 'utf8');
