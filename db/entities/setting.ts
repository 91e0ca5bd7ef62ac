import { EntitySchema, type Opt } from '@mikro-orm/core';

/** A stored setting; keys without a row have their catalogue default. */
export class Setting {
  key!: string;
  value!: unknown;
  updatedAt: Opt<Date> = new Date();
}

export const SettingSchema = new EntitySchema<Setting>({
  class: Setting,
  tableName: 'settings',
  properties: {
    key: { type: 'string', primary: true },
    value: { type: 'json' },
    updatedAt: { type: 'Date', onUpdate: () => new Date() },
  },
});
