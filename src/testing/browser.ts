/** Debian's Chromium, driven by playwright-core (no browser download), for the dashboard's tests and bench. */
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Chromium refuses to run as root with its sandbox; tests and the bench run as root. */
export const launchChromium = (): Promise<Browser> => chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
