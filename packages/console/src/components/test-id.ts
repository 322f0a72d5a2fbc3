/** Adds a data-testid to a props object whose type does not declare data-* attributes (antd's okButtonProps). */
export function withTestId<T extends object>(id: string, props: T = {} as T): T {
  return { ...props, 'data-testid': id } as T;
}
