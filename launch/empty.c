// Keeps every folder library a valid archive while a folder has no sources of its own.
typedef int tj_empty_translation_unit;
