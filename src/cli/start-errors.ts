import { resolve } from 'node:path';

/**
 * Start-up errors that say what failed: the role of a file (`users file`, `admins file`, `TLS
 * certificate`) with its full path, and what is wrong with it in words, not a bare `EISDIR`.
 */
export function fileError(role: string, path: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const where = `${role} ${resolve(path)}`;
  const problem =
    code === 'ENOENT'
      ? `${where} does not exist`
      : code === 'EISDIR'
        ? `${where} is a directory, not a file`
        : code === 'EACCES' || code === 'EPERM'
          ? `${where} cannot be read or written (permission denied)`
          : code === 'ENOTDIR'
            ? `${where}: a part of the path is not a directory`
            : `${where}: ${error instanceof Error ? error.message : String(error)}`;
  return new Error(problem, { cause: error });
}

/** For `.catch()`: rethrows any failure as {@link fileError}. */
export const asFileError =
  (role: string, path: string) =>
  (error: unknown): never => {
    throw fileError(role, path, error);
  };
