/*
 * The CTL/ITL TLV codec (spec/tlv-files.md): every public header in one.
 */
#ifndef TLV_H
#define TLV_H

#include "tlv_build.h"
#include "tlv_codes.h"
#include "tlv_encode.h"
#include "tlv_file.h"
#include "tlv_verify.h"

#endif
