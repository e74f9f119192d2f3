/**
 * A small tmpfs that a test mounts and fills to the last byte: a full disk for the one database
 * that lives on it, while every other file (the PostgreSQL data directory and its WAL, the
 * other test files' databases, /) keeps its space. Mounting needs root; suites skip, saying so,
 * where that is not possible.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmdirSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** statfs(2)'s f_type for tmpfs. */
const TMPFS_MAGIC = 0x01021994;
const MIB = 1024 * 1024;

export interface Tmpfs {
  /** The mount point. */
  readonly dir: string;
  /**
   * Writes a filler file until the kernel answers ENOSPC, and returns its size in bytes.
   * Refuses to write anywhere but this tmpfs.
   */
  fill(): number;
  /** Deletes the filler: the disk has room again. */
  free(): void;
  /** Bytes an unprivileged writer could still use. */
  available(): number;
  /** Unmounts (lazily if something still holds a file open) and removes the mount point. */
  unmount(): void;
}

function run(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: 'pipe' });
}

function message(error: unknown): string {
  const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
  return stderr || (error as Error).message;
}

/** Why a tmpfs cannot be mounted here (so the suite is skipped), or null if it can. */
export function tmpfsUnavailable(): string | null {
  if (process.platform !== 'linux') return `tmpfs needs Linux, not ${process.platform}`;
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root, and the tests do not run as root';
  let tmpfs: Tmpfs;
  try {
    tmpfs = mountTmpfs(1);
  } catch (error) {
    return `mount -t tmpfs failed: ${message(error)}`;
  }
  tmpfs.unmount();
  return null;
}

export function mountTmpfs(sizeMib: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'helpdesk-tmpfs-'));
  try {
    run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMib}m,mode=0755`, 'tmpfs', dir]);
  } catch (error) {
    rmdirSync(dir);
    throw error;
  }
  const filler = join(dir, 'filler');
  let mounted = true;

  /** The filler may only ever go on this small tmpfs, never on the disk under it. */
  const checkMounted = () => {
    const stats = statfsSync(dir);
    if (!mounted || stats.type !== TMPFS_MAGIC || stats.blocks * stats.bsize > sizeMib * MIB) {
      throw new Error(`refusing to fill ${dir}: it is not the ${sizeMib} MiB tmpfs this test mounted`);
    }
  };
  checkMounted();

  return {
    dir,
    fill() {
      checkMounted();
      const chunk = Buffer.alloc(MIB, 0x5a);
      const fd = openSync(filler, 'a');
      let written = 0;
      try {
        for (;;) written += writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        closeSync(fd);
      }
      return written;
    },
    free() {
      rmSync(filler, { force: true });
    },
    available() {
      const stats = statfsSync(dir);
      return stats.bavail * stats.bsize;
    },
    unmount() {
      if (!mounted) return;
      try {
        run('umount', [dir]);
      } catch {
        // Something still holds a file open (a server that did not close): detach it now, the
        // kernel frees the memory when the last file is closed.
        run('umount', ['-l', dir]);
      }
      mounted = false;
      rmdirSync(dir);
    },
  };
}
