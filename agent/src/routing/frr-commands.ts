// Hand edits of FRR, as they happen: the rendered configuration turns on
// `log commands` into a log file of its own, and this watcher reads what is
// appended to it. A configuration command (anything but show, enable, end,
// exit and the like) calls back at once, so a change made with vtysh is
// found and put back within a second instead of at the next periodic check.
// The agent keeps the file short: it is truncated once read past 1 MiB.
import { type FSWatcher, watch } from 'node:fs';
import { open, stat, truncate } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

/** `... vty[18]@(config-router)# bgp router-id 10.1.0.2` -> the command after the prompt. */
const COMMAND = /vty\[\d+\]@[^#>]*[#>]\s?(.*)$/;
/** Commands that change nothing. */
const HARMLESS = /^(enable|disable|end|exit|quit|configure( terminal)?|(do )?show\b|(do )?write terminal|(do )?list\b|terminal\b|(do )?clear\b|!|$)/;
const MAX_BYTES = 1 << 20;

/** The configuration commands in a chunk of FRR's log. Pure. */
export function configCommands(text: string): string[] {
  return text.split('\n').flatMap((line) => {
    const m = COMMAND.exec(line.trimEnd());
    const cmd = m?.[1]?.trim();
    return cmd !== undefined && !HARMLESS.test(cmd) ? [cmd] : [];
  });
}

export class FrrCommandLog {
  private watcher: FSWatcher | undefined;
  private offset = 0;
  private reading: Promise<void> | undefined;
  private again = false;

  /** `onCommands` gets the configuration commands found in each new chunk. */
  constructor(private readonly path: string, private readonly onCommands: (commands: string[]) => void) {}

  /** Starts following the file from its current end (what is already there was before us). */
  async start(): Promise<void> {
    this.offset = (await stat(this.path).catch(() => undefined))?.size ?? 0;
    // The directory, not the file: FRR creates the file when it first logs, and it may be truncated.
    this.watcher = watch(dirname(this.path), (_event, name) => {
      if (name === null || name === basename(this.path)) this.read();
    });
    this.watcher.on('error', () => undefined);
  }

  private read(): void {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = this.readNew().catch(() => undefined).finally(() => {
      this.reading = undefined;
      if (this.again) {
        this.again = false;
        this.read();
      }
    });
  }

  private async readNew(): Promise<void> {
    const fh = await open(this.path, 'r');
    let text: string;
    try {
      const { size } = await fh.stat();
      if (size < this.offset) this.offset = 0;
      if (size === this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      await fh.read(buf, 0, buf.length, this.offset);
      // Only whole lines; a partial last line waits for its end.
      const end = buf.lastIndexOf(0x0a) + 1;
      text = buf.subarray(0, end).toString();
      this.offset += end;
    } finally {
      await fh.close();
    }
    const commands = configCommands(text);
    if (commands.length > 0) this.onCommands(commands);
    if (this.offset > MAX_BYTES) {
      await truncate(this.path, 0);
      this.offset = 0;
    }
  }

  close(): void {
    this.watcher?.close();
  }
}
