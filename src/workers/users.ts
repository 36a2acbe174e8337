/** What the monitor changes in a users file. */
export interface EditableUsers {
  setPassword(name: string, password: string): Promise<void>;
  deleteUser(name: string): Promise<boolean>;
  userNames(): Iterable<string>;
}

/**
 * The primary's users file as the monitor edits it with workers: a change is answered only once
 * every worker has re-read the file, so the next login counts it whichever worker serves it.
 */
export function usersOfWorkers(users: EditableUsers, pool: { reloadUsers(): Promise<void> }): EditableUsers {
  return {
    async setPassword(name, password) {
      await users.setPassword(name, password);
      await pool.reloadUsers();
    },
    async deleteUser(name) {
      const isDeleted = await users.deleteUser(name);
      if (isDeleted) await pool.reloadUsers();
      return isDeleted;
    },
    userNames: () => users.userNames(),
  };
}
