/**
 * The few browser globals that functions run inside the page (page.evaluate, waitForFunction) use,
 * typed for the Node-side tests and bench: the DOM lib itself is not loaded there (its stream
 * types would shadow Node's).
 */
interface PageElement {
  readonly textContent: string | null;
  readonly dataset: Record<string, string | undefined>;
  readonly scrollWidth: number;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>;
  readonly documentElement: PageElement;
  readonly activeElement: { getAttribute(name: string): string | null } | null;
};
declare const window: { readonly innerWidth: number };
declare const localStorage: { setItem(key: string, value: string): void };
