// Which messages the page shows (without the DOM, so that it can be tested in node): a new message
// replaces one with the same key or the same text, and only the newest few stay. An error that repeats
// every frame thus shows once, instead of filling the page.

export class MessageList {
  /** `onRemove(item)` is called for every message that goes (replaced, dropped as the oldest, removed). */
  constructor(max, onRemove = () => {}) {
    this.max = max;
    this.onRemove = onRemove;
    this.items = []; // {kind, text, key}, oldest first
  }

  /** Adds a message and returns its item (the caller may attach its element to it). */
  add(kind, text, key = null) {
    this.removeWhere((m) => (key !== null && m.key === key) || m.text === text);
    const item = { kind, text, key };
    this.items.push(item);
    while (this.items.length > this.max) this.drop(this.items[0]);
    return item;
  }

  /** Removes the messages with this key. */
  remove(key) {
    this.removeWhere((m) => m.key === key);
  }

  drop(item) {
    const at = this.items.indexOf(item);
    if (at < 0) return;
    this.items.splice(at, 1);
    this.onRemove(item);
  }

  removeWhere(match) {
    for (const item of this.items.filter(match)) this.drop(item);
  }
}
