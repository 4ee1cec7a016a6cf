// Pinning on bpffs: the directory is made (and bpffs mounted at /sys/fs/bpf where it is
// missing, as bpftool does) before anything is pinned into it.
import fs from 'node:fs';
import path from 'node:path';
import { bpfError, nativeCall } from './errors';
import { native } from './native';

/** mkdir -p `dir` on bpffs, mounting bpffs at /sys/fs/bpf first when nothing is mounted there. */
export function ensurePinDir(dir: string): void {
  if (typeof dir !== 'string' || dir.length === 0) throw bpfError('pin', 'EINVAL', 'pin directory must be a non-empty path');
  nativeCall(dir, () => native.ensureBpffs(path.resolve(dir)));
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw bpfError('mkdir', (e.code ?? 'EIO') as 'EIO', `${e.message}`, dir);
  }
}

/** Pins `fd` at `pinPath`, making its directory first. */
export function pinFd(fd: number, pinPath: string, what: string): void {
  checkPath(pinPath, what);
  ensurePinDir(path.dirname(pinPath));
  nativeCall(pinPath, () => native.objPin(fd, pinPath));
}

/** Removes a pin; an absent pin is ENOENT. */
export function unpinPath(pinPath: string, what: string): void {
  checkPath(pinPath, what);
  try {
    fs.unlinkSync(pinPath);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw bpfError('unpin', (e.code ?? 'EIO') as 'EIO', `${pinPath}: ${e.code === 'ENOENT' ? 'nothing is pinned there' : e.message}`, what);
  }
}

function checkPath(pinPath: string, what: string): void {
  if (typeof pinPath !== 'string' || pinPath.length === 0) throw bpfError('pin', 'EINVAL', 'pin path must be a non-empty string', what);
}
