import { useQuery } from '@tanstack/react-query';
import { TreeSelect } from 'antd';
import type { ReactNode } from 'react';
import { api, unwrap } from '../api/client.js';

/** A department as GET /api/v1/orgs/{orgId}/departments lists it (flat, with parent ids). */
export interface Dept {
  id: string;
  parent_id: string | null;
  name: string;
}

export interface DeptNode {
  key: string;
  value: string;
  title: ReactNode;
  children: DeptNode[];
  disabled?: boolean;
}

/** The organisation's departments (query key ['orgs', orgId, 'departments']). */
export function useDepartments(orgId: string) {
  return useQuery({
    queryKey: ['orgs', orgId, 'departments'],
    queryFn: async () =>
      ((await unwrap(api.GET('/api/v1/orgs/{orgId}/departments', { params: { path: { orgId } } }))).departments ?? []) as Dept[],
  });
}

/** Builds the antd tree (Tree / TreeSelect data) from the flat list; `disable` greys out nodes. */
export function deptTree(depts: Dept[], disable: (d: Dept) => boolean = () => false): DeptNode[] {
  const nodes = new Map<string, DeptNode>();
  for (const d of depts) nodes.set(d.id, { key: d.id, value: d.id, title: d.name, children: [], disabled: disable(d) });
  const roots: DeptNode[] = [];
  for (const d of depts) {
    const n = nodes.get(d.id)!;
    const parent = d.parent_id ? nodes.get(d.parent_id) : undefined;
    if (parent) parent.children.push(n);
    else roots.push(n);
  }
  return roots;
}

/** The ids of `id` and everything below it. */
export function subtree(depts: Dept[], id: string): Set<string> {
  const out = new Set([id]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const d of depts)
      if (d.parent_id && out.has(d.parent_id) && !out.has(d.id)) {
        out.add(d.id);
        grew = true;
      }
  }
  return out;
}

export const deptName = (depts: Dept[] | undefined, id: string | null | undefined) =>
  (id && depts?.find((d) => d.id === id)?.name) || id || '—';

/** A department picker over the tree (one, or several with `multiple`). */
export function DepartmentSelect({
  depts,
  value,
  onChange,
  multiple,
  disable,
  placeholder,
  testId,
}: {
  depts: Dept[];
  value?: string | string[];
  onChange?: (v: string | string[]) => void;
  multiple?: boolean;
  disable?: (d: Dept) => boolean;
  placeholder?: string;
  testId?: string;
}) {
  return (
    <TreeSelect
      data-testid={testId}
      treeData={deptTree(depts, disable)}
      value={value}
      onChange={onChange}
      multiple={multiple}
      treeDefaultExpandAll
      allowClear={multiple}
      placeholder={placeholder}
      style={{ width: '100%' }}
      popupMatchSelectWidth={false}
      showSearch
      treeNodeFilterProp="title"
    />
  );
}
