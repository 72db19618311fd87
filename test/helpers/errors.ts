// The `code` a promise rejects with ('no error' when it resolves), for asserting coded errors.
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return 'no error';
}
