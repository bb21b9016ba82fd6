'use strict';
// The campaign form's pickers (adengine.admin.pickers): products searched as you type, shown with a thumbnail,
// and the shop's categories filtered as you type. Both are the select2 that Django's admin ships.
{
    const $ = django.jQuery;

    function withThumbnail(item) {
        if (!item.id || !item.image) {
            return item.text;
        }
        const row = $('<span class="adengine-pick"></span>');
        $('<img alt="" width="32" height="32" loading="lazy">')
            .attr('src', item.image)
            .css({'object-fit': 'cover', 'vertical-align': 'middle', 'margin-right': '8px', 'border-radius': '3px'})
            .appendTo(row);
        $('<span></span>').text(item.text).appendTo(row);
        return row;
    }

    function init(root) {
        $(root).find('.adengine-product-picker').not('[name*=__prefix__]').each(function(i, element) {
            $(element).select2({
                ajax: {data: (params) => ({term: params.term, page: params.page})},
                templateResult: withThumbnail,
            });
        });
        $(root).find('.adengine-category-picker').not('[name*=__prefix__]').each(function(i, element) {
            $(element).select2();
        });
    }

    $(function() {
        init(document);
    });
}
